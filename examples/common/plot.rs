//! A tiny PNG line plot for the examples: no plotting crate, just a raster, a few lines and a
//! PNG written through flate2 (which timeloom already depends on). Good enough to see a curve.

#![allow(dead_code)]

use std::io::Write;

/// A white RGB canvas.
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<[u8; 3]>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![[255, 255, 255]; w * h],
        }
    }

    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }

    /// A grey-scale image (values in [0, 1], 0 black) at (x, y), each pixel `scale` × `scale`.
    pub fn image(&mut self, x: i64, y: i64, v: &[f32], w: usize, scale: i64) {
        for (i, &a) in v.iter().enumerate() {
            let g = (255.0 - a.clamp(0.0, 1.0) * 255.0) as u8;
            let (px, py) = (x + (i % w) as i64 * scale, y + (i / w) as i64 * scale);
            for dy in 0..scale {
                for dx in 0..scale {
                    self.set(px + dx, py + dy, [g, g, g]);
                }
            }
        }
    }

    /// A decimal digit in a 3×5 pixel font at (x, y), each font pixel `scale` × `scale`.
    pub fn digit(&mut self, x: i64, y: i64, d: u32, scale: i64, c: [u8; 3]) {
        self.text(x, y, &(d % 10).to_string(), scale, c);
    }

    /// Text in a 3×5 pixel font (digits, letters without case, `,./-:` and space; anything
    /// else as a filled box) at (x, y), 4·scale pixels per character.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let bits = glyph(ch);
            let x0 = x + k as i64 * 4 * scale;
            for row in 0..5 {
                for col in 0..3 {
                    if bits >> (14 - (row * 3 + col)) & 1 == 1 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.set(x0 + col * scale + dx, y + row * scale + dy, c);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A line from (x0, y0) to (x1, y1), Bresenham.
    pub fn line(&mut self, (mut x0, mut y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            self.set(x0, y0, c);
            if x0 == x1 && y0 == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x0 += sx;
            }
            if e2 <= dx {
                err += dx;
                y0 += sy;
            }
        }
    }

    /// The canvas as PNG bytes (8-bit RGB, no interlace).
    pub fn png(&self) -> Vec<u8> {
        fn crc32(data: &[u8]) -> u32 {
            let mut c = 0xFFFF_FFFFu32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend((data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend(&body);
            out.extend(crc32(&body).to_be_bytes());
        }
        let mut raw = Vec::with_capacity(self.h * (1 + 3 * self.w));
        for y in 0..self.h {
            raw.push(0); // filter: none
            for x in 0..self.w {
                raw.extend(self.px[y * self.w + x]);
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&raw).expect("writing to memory");
        let idat = z.finish().expect("writing to memory");
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend((self.w as u32).to_be_bytes());
        ihdr.extend((self.h as u32).to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

/// One curve: its points and its colour.
/// The 3×5 glyph of `ch`: 15 bits, rows top to bottom, each row's left pixel first.
fn glyph(ch: char) -> u16 {
    const DIGITS: [u16; 10] = [
        0b111_101_101_101_111,
        0b010_110_010_010_111,
        0b111_001_111_100_111,
        0b111_001_111_001_111,
        0b101_101_111_001_001,
        0b111_100_111_001_111,
        0b111_100_111_101_111,
        0b111_001_001_001_001,
        0b111_101_111_101_111,
        0b111_101_111_001_111,
    ];
    const LETTERS: [u16; 26] = [
        0b010_101_111_101_101,
        0b110_101_110_101_110,
        0b011_100_100_100_011,
        0b110_101_101_101_110,
        0b111_100_110_100_111,
        0b111_100_110_100_100,
        0b011_100_101_101_011,
        0b101_101_111_101_101,
        0b111_010_010_010_111,
        0b001_001_001_101_010,
        0b101_101_110_101_101,
        0b100_100_100_100_111,
        0b101_111_111_101_101,
        0b110_101_101_101_101,
        0b010_101_101_101_010,
        0b110_101_110_100_100,
        0b010_101_101_110_011,
        0b110_101_110_101_101,
        0b011_100_010_001_110,
        0b111_010_010_010_010,
        0b101_101_101_101_111,
        0b101_101_101_101_010,
        0b101_101_111_111_101,
        0b101_101_010_101_101,
        0b101_101_010_010_010,
        0b111_001_010_100_111,
    ];
    match ch {
        '0'..='9' => DIGITS[ch as usize - '0' as usize],
        'a'..='z' => LETTERS[ch as usize - 'a' as usize],
        'A'..='Z' => LETTERS[ch as usize - 'A' as usize],
        ',' => 0b000_000_000_010_100,
        '.' => 0b000_000_000_000_010,
        '/' => 0b001_001_010_100_100,
        '-' => 0b000_000_111_000_000,
        ':' => 0b000_010_000_010_000,
        ' ' => 0,
        _ => 0b111_111_111_111_111,
    }
}

pub type Series<'a> = (&'a [(f64, f64)], [u8; 3]);

/// A short axis label: plain for moderate magnitudes, exponent form otherwise.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..10_000.0).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A series that owns its points.
pub type OwnedSeries = (Vec<(f64, f64)>, [u8; 3]);

/// `line_plot` over owned series.
pub fn line_plot_owned(series: &[OwnedSeries], w: usize, h: usize) -> Vec<u8> {
    let refs: Vec<Series<'_>> = series.iter().map(|(p, c)| (&p[..], *c)).collect();
    line_plot(&refs, w, h)
}

/// Curves (x, y) in distinct colours on shared axes, with a light grid; y on a linear scale.
pub fn line_plot(series: &[Series<'_>], w: usize, h: usize) -> Vec<u8> {
    let mut c = Canvas::new(w, h);
    let pts = series.iter().flat_map(|(s, _)| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    if y0 >= y1 {
        y1 = y0 + 1.0;
    }
    let (m, mb) = (40i64, 30i64);
    let px = |x: f64| m + ((x - x0) / (x1 - x0) * (w as f64 - 2.0 * m as f64)) as i64;
    let py =
        |y: f64| (h as i64 - mb) - ((y - y0) / (y1 - y0) * (h as f64 - mb as f64 - 20.0)) as i64;
    for k in 0..=4 {
        let y = y0 + (y1 - y0) * f64::from(k) / 4.0;
        c.line((m, py(y)), (w as i64 - m, py(y)), [225, 225, 225]);
        let label = tick(y);
        c.text(
            m - 3 - 4 * label.len() as i64,
            py(y) - 2,
            &label,
            1,
            [90, 90, 90],
        );
    }
    for k in 0..=4 {
        let x = x0 + (x1 - x0) * f64::from(k) / 4.0;
        let label = tick(x);
        c.line(
            (px(x), h as i64 - mb),
            (px(x), h as i64 - mb + 3),
            [0, 0, 0],
        );
        c.text(
            px(x) - 2 * label.len() as i64,
            h as i64 - mb + 6,
            &label,
            1,
            [90, 90, 90],
        );
    }
    c.line((m, h as i64 - mb), (w as i64 - m, h as i64 - mb), [0, 0, 0]);
    c.line((m, h as i64 - mb), (m, 10), [0, 0, 0]);
    for (s, col) in series {
        for win in s.windows(2) {
            if win[0].1.is_finite() && win[1].1.is_finite() {
                c.line(
                    (px(win[0].0), py(win[0].1)),
                    (px(win[1].0), py(win[1].1)),
                    *col,
                );
            }
        }
    }
    c.png()
}

//! The examples' figures. Charts are drawn by `plotters` with a title, labelled axes and a
//! legend naming each curve (a log axis says so); image grids (digits, attention weights, a
//! frame) are a `Canvas` of pixels that `titled` puts under a title and a caption. Text uses
//! DejaVu Sans from the system (Debian's fonts-dejavu-core; `TIMELOOM_FONT=path.ttf` picks
//! another), read once; without it a figure is an error that says so, which the examples
//! report and go on. PNGs are encoded by the `png` crate.

#![allow(dead_code)]

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

    /// The canvas as PNG bytes (8-bit RGB).
    pub fn png(&self) -> Vec<u8> {
        let raw: Vec<u8> = self.px.iter().flatten().copied().collect();
        encode_png(&raw, self.w as u32, self.h as u32)
    }
}

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

/// An axis label: whole numbers over a span of 10 or more (steps, distances), else up to three
/// significant decimals.
fn tick(v: f64, span: f64) -> String {
    if span >= 10.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 8-bit RGB rows as PNG bytes.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("writing to memory");
    writer.write_image_data(rgb).expect("writing to memory");
    writer.finish().expect("writing to memory");
    out
}

/// Registers the font plotters draws text with, once: `Err` says what to install.
fn font() -> Result<(), String> {
    use std::sync::OnceLock;
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var("TIMELOOM_FONT")
            .unwrap_or_else(|_| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "no font for the figure's text at {path} ({e}): install fonts-dejavu-core \
                 (Debian/Ubuntu) or set TIMELOOM_FONT to a .ttf file"
            )
        })?;
        // plotters keeps a &'static reference: the one font lives as long as the program.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .map_err(|_| format!("{path} is not a font plotters can read"))
    })
    .clone()
}

/// A line chart's words: what a reader needs without the README.
pub struct Chart<'a> {
    pub title: &'a str,
    /// The x axis's label, with its unit.
    pub x: &'a str,
    /// The y axis's label, with its unit.
    pub y: &'a str,
    /// A log y axis (the label says so, ticks read 1e-6 ...): for data that spans decades.
    /// Points ≤ 0 are dropped.
    pub log_y: bool,
    /// Where the legend goes: a corner the curves leave empty.
    pub legend: plotters::chart::SeriesLabelPosition,
}

/// One labelled curve.
pub struct Line<'a> {
    pub label: &'a str,
    pub points: &'a [(f64, f64)],
    pub color: [u8; 3],
}

impl Chart<'_> {
    /// The chart as PNG bytes, `w` × `h` pixels.
    pub fn png(&self, lines: &[Line<'_>], w: u32, h: u32) -> Result<Vec<u8>, String> {
        use plotters::prelude::*;
        font()?;
        // A log axis is drawn as log₁₀ of the values on a linear axis whose labels read as
        // powers of ten: plotters' own log scale labels only a few decades.
        let log = self.log_y;
        let map = |&(x, y): &(f64, f64)| {
            let y = if log { y.log10() } else { y };
            (x.is_finite() && y.is_finite()).then_some((x, y))
        };
        let curves: Vec<Vec<(f64, f64)>> = lines
            .iter()
            .map(|l| l.points.iter().filter_map(map).collect())
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in curves.iter().flatten() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x0 == x1 {
            x1 = x0 + 1.0;
        }
        if y0 == y1 {
            y1 = y0 + y0.abs().max(1.0) * 0.1;
        }
        let pad = (y1 - y0) * 0.05;
        let y_label = |y: &f64| {
            if !log {
                tick(*y, y1 - y0)
            } else if (y - y.round()).abs() < 1e-6 {
                format!("1e{}", y.round())
            } else {
                format!("{:.1e}", 10f64.powf(*y))
            }
        };
        let y_desc = if log {
            format!("{} (log scale)", self.y)
        } else {
            self.y.to_string()
        };
        let mut rgb = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            let err = |e: DrawingAreaErrorKind<_>| format!("drawing the figure: {e:?}");
            root.fill(&WHITE).map_err(err)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| tick(*x, x1 - x0))
                .y_label_formatter(&y_label)
                .y_labels(8)
                .x_desc(self.x)
                .y_desc(y_desc)
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            for (l, points) in lines.iter().zip(curves) {
                let c = RGBColor(l.color[0], l.color[1], l.color[2]);
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))
                    .map_err(err)?
                    .label(l.label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(self.legend.clone())
                .draw()
                .map_err(err)?;
            root.present().map_err(err)?;
        }
        Ok(encode_png(&rgb, w, h))
    }
}

/// `canvas` under a title, with a caption below it saying how to read it (axes, colours), as
/// PNG bytes.
pub fn titled(canvas: &Canvas, title: &str, caption: &str) -> Result<Vec<u8>, String> {
    use plotters::prelude::*;
    font()?;
    let band = 56u32;
    // Wide enough for the words (about 9 px a character of the title, 7 of the caption).
    let chars = |t: &str| t.chars().count() as u32;
    let w = (canvas.w as u32)
        .max(9 * chars(title) + 16)
        .max(7 * chars(caption) + 16);
    let h = canvas.h as u32 + band;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing the figure: {e:?}");
        root.draw_text(title, &("sans-serif", 18).into_font().color(&BLACK), (8, 6))
            .map_err(err)?;
        root.draw_text(
            caption,
            &("sans-serif", 13).into_font().color(&RGBColor(70, 70, 70)),
            (8, 32),
        )
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    for y in 0..canvas.h {
        for x in 0..canvas.w {
            let at = (((y as u32 + band) * w + x as u32) * 3) as usize;
            rgb[at..at + 3].copy_from_slice(&canvas.px[y * canvas.w + x]);
        }
    }
    Ok(encode_png(&rgb, w, h))
}

/// Writes a figure atomically under `dir` (created if need be); one that could not be drawn (no
/// font) is reported on stderr and skipped: a run's numbers matter more than its pictures.
pub fn save(
    dir: &std::path::Path,
    name: &str,
    png: Result<Vec<u8>, String>,
) -> timeloom::Result<()> {
    match png {
        Ok(bytes) => {
            std::fs::create_dir_all(dir).map_err(|source| timeloom::Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            timeloom::io::write_atomic(dir.join(name), &bytes)
        }
        Err(why) => {
            eprintln!("skipped {}: {why}", dir.join(name).display());
            Ok(())
        }
    }
}

//! Data loading: numeric CSV tables (optionally gzipped), split and batched. Loaders treat files
//! as hostile: a malformed row, a ragged table or a file past the size cap is a typed
//! `Error::Format` or `Error::Io` naming the file and line, never a panic.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Largest decompressed table accepted (bounds memory on a hostile file).
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// A dense numeric table, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// rows × cols values.
    pub values: Vec<f32>,
}

impl Table {
    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }
}

/// Reads a comma-separated numeric table without a header; a `.gz` file is decompressed.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let read = reader
        .take(MAX_TABLE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                Error::Format {
                    what: path.display().to_string(),
                    message: format!("not UTF-8 text or not valid gzip: {e}"),
                }
            } else {
                io(e)
            }
        })?;
    if read as u64 > MAX_TABLE_BYTES {
        return Err(Error::Format {
            what: path.display().to_string(),
            message: format!("larger than {MAX_TABLE_BYTES} bytes decompressed; split the file"),
        });
    }
    parse_csv(&path.display().to_string(), &text)
}

/// Parses a comma-separated numeric table from text; `what` names it in errors.
pub fn parse_csv(what: &str, text: &str) -> Result<Table> {
    let mut values = Vec::new();
    let mut cols = 0;
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let before = values.len();
        for field in line.split(',') {
            let v: f32 = field.trim().parse().map_err(|_| Error::Format {
                what: what.to_string(),
                message: format!("line {}: {field:?} is not a number", i + 1),
            })?;
            values.push(v);
        }
        let n = values.len() - before;
        if rows == 0 {
            cols = n;
        } else if n != cols {
            return Err(Error::Format {
                what: what.to_string(),
                message: format!("line {} has {n} fields; the first row has {cols}", i + 1),
            });
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::Format {
            what: what.to_string(),
            message: "no rows".into(),
        });
    }
    Ok(Table { rows, cols, values })
}

/// A labelled classification set: features [n, d] and integer labels.
#[derive(Clone, Debug)]
pub struct Labelled {
    /// n × d features.
    pub features: Vec<f32>,
    /// n labels.
    pub labels: Vec<u32>,
    /// d.
    pub dim: usize,
}

impl Labelled {
    /// The last column of `table` as labels, the rest scaled by `scale` as features.
    pub fn from_table(table: &Table, scale: f32) -> Result<Labelled> {
        if table.cols < 2 {
            return Err(Error::Format {
                what: "table".into(),
                message: "needs features and a label column".into(),
            });
        }
        let dim = table.cols - 1;
        let mut features = Vec::with_capacity(table.rows * dim);
        let mut labels = Vec::with_capacity(table.rows);
        for r in 0..table.rows {
            let row = table.row(r);
            features.extend(row[..dim].iter().map(|v| v * scale));
            let l = row[dim];
            if l < 0.0 || l.fract() != 0.0 {
                return Err(Error::Format {
                    what: "table".into(),
                    message: format!("row {r}: label {l} is not a class id"),
                });
            }
            labels.push(l as u32);
        }
        Ok(Labelled {
            features,
            labels,
            dim,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A seeded shuffle split: (train, test) with `test` examples held out.
    pub fn split(&self, test: usize, seed: u64) -> (Labelled, Labelled) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        shuffle(&mut order, &mut Rng::new(seed));
        let pick = |idx: &[usize]| Labelled {
            features: idx
                .iter()
                .flat_map(|&i| {
                    self.features[i * self.dim..(i + 1) * self.dim]
                        .iter()
                        .copied()
                })
                .collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            dim: self.dim,
        };
        let test = test.min(self.len());
        (pick(&order[test..]), pick(&order[..test]))
    }

    /// Features and labels (as f32 class ids) of examples `idx`.
    pub fn batch(&self, idx: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let x = idx
            .iter()
            .flat_map(|&i| {
                self.features[i * self.dim..(i + 1) * self.dim]
                    .iter()
                    .copied()
            })
            .collect();
        let y = idx.iter().map(|&i| self.labels[i] as f32).collect();
        (x, y)
    }
}

/// Fisher–Yates with a seeded generator.
pub fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.int(0, i);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tables_are_format_errors_naming_the_line() {
        assert!(
            matches!(parse_csv("t", "1,2\n3,x\n"), Err(Error::Format { message, .. }) if message.contains("line 2"))
        );
        assert!(
            matches!(parse_csv("t", "1,2\n3\n"), Err(Error::Format { message, .. }) if message.contains("line 2"))
        );
        assert!(matches!(parse_csv("t", "\n\n"), Err(Error::Format { .. })));
        let t = parse_csv("t", "1,2,3\n4,5,6\n").unwrap();
        assert_eq!((t.rows, t.cols, t.row(1)), (2, 3, &[4.0, 5.0, 6.0][..]));
    }

    /// 3,000 corrupted tables (random bytes, non-UTF-8, ragged rows) never panic.
    #[test]
    fn corrupted_tables_never_panic() {
        let good = "1,2,3\n4,5,6\n7,8,9\n".as_bytes().to_vec();
        let mut rng = crate::Rng::new(5);
        for _ in 0..3000 {
            let mut b = good.clone();
            for _ in 0..rng.int(1, 4) {
                let i = rng.int(0, b.len() - 1);
                b[i] = rng.next_u64() as u8;
            }
            if let Ok(text) = std::str::from_utf8(&b) {
                let _ = parse_csv("fuzz", text);
            }
        }
        let path = std::env::temp_dir().join(format!("timeloom-bad-{}.csv", std::process::id()));
        std::fs::write(&path, [0xff, 0xfe, b'1', b',', b'2']).unwrap();
        let r = read_csv(&path);
        std::fs::remove_file(&path).ok();
        assert!(
            matches!(r, Err(Error::Format { .. })),
            "non-UTF-8 text is a format error: {r:?}"
        );
    }

    #[test]
    fn a_truncated_gzip_is_an_error_not_a_panic() {
        let path =
            std::env::temp_dir().join(format!("timeloom-trunc-{}.csv.gz", std::process::id()));
        let good =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")).unwrap();
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let r = read_csv(&path);
        std::fs::remove_file(&path).ok();
        assert!(r.is_err(), "half a gzip stream must not parse");
    }
}

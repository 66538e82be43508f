//! Field paths: `PID-3`, `PID-3.1`, `OBX[2]-5.1`, `PID-3[2].1.2`, `MSH-9.2`.
//! Segment occurrence and field repetition are 1-based and default to 1.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub segment: [u8; 3],
    pub occurrence: usize,
    pub field: usize,
    pub repetition: usize,
    pub component: Option<usize>,
    pub subcomponent: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HL7 path `{path}`: {reason} (expected a form like PID-3, PID-3.1, OBX[2]-5.1 or PID-3[2].1.1)")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

impl FromStr for FieldPath {
    type Err = PathError;

    fn from_str(path: &str) -> Result<Self, PathError> {
        let fail = |reason| PathError { path: path.to_string(), reason };
        let (seg_part, rest) = path.split_once('-').ok_or_else(|| fail("missing `-` after the segment"))?;
        let (name, occurrence) = split_index(seg_part).ok_or_else(|| fail("bad segment occurrence"))?;
        let name = name.as_bytes();
        if name.len() != 3 || !name.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return Err(fail("segment name must be three upper-case letters or digits"));
        }
        let mut parts = rest.split('.');
        let field_part = parts.next().unwrap_or_default();
        let (field, repetition) = split_index(field_part).ok_or_else(|| fail("bad field repetition"))?;
        let field = positive(field).ok_or_else(|| fail("field number must be a positive integer"))?;
        let component = parts.next().map(positive).map(|c| c.ok_or_else(|| fail("component must be a positive integer"))).transpose()?;
        let subcomponent =
            parts.next().map(positive).map(|s| s.ok_or_else(|| fail("subcomponent must be a positive integer"))).transpose()?;
        if parts.next().is_some() {
            return Err(fail("too many parts"));
        }
        Ok(FieldPath { segment: [name[0], name[1], name[2]], occurrence, field, repetition, component, subcomponent })
    }
}

/// `NAME[3]` → (`NAME`, 3); `NAME` → (`NAME`, 1).
fn split_index(s: &str) -> Option<(&str, usize)> {
    match s.split_once('[') {
        None => Some((s, 1)),
        Some((name, idx)) => Some((name, positive(idx.strip_suffix(']')?)?)),
    }
}

fn positive(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 6 {
        return None;
    }
    s.parse().ok().filter(|n| *n > 0)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.segment).unwrap_or("???"))?;
        if self.occurrence != 1 {
            write!(f, "[{}]", self.occurrence)?;
        }
        write!(f, "-{}", self.field)?;
        if self.repetition != 1 {
            write!(f, "[{}]", self.repetition)?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let p: FieldPath = "OBX[2]-5.1".parse().unwrap();
        assert_eq!((&p.segment, p.occurrence, p.field, p.repetition, p.component, p.subcomponent), (b"OBX", 2, 5, 1, Some(1), None));
        let p: FieldPath = "PID-3[2].1.2".parse().unwrap();
        assert_eq!((p.field, p.repetition, p.component, p.subcomponent), (3, 2, Some(1), Some(2)));
        for s in ["PID-3", "PID-3.1", "OBX[2]-5.1", "PID-3[2].1.2", "ZZ1-1"] {
            assert_eq!(s.parse::<FieldPath>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn refuses_malformed_paths_with_a_reason() {
        for s in ["", "PID", "PID-", "PID-0", "pid-3", "PID-3.", "PID-3.1.2.3", "PID[0]-3", "PID[x]-3", "OBX[2-5", "PID-3.-1", "PID-99999999999"] {
            let err = s.parse::<FieldPath>().unwrap_err();
            assert!(err.to_string().contains(s), "{err}");
        }
    }
}

/// A configuration value that cannot be used, with the dotted path of its key.
///
/// Every stage's config section validates itself into these, so that an operator reading the log
/// sees `store.max_bytes: must be at least 1 MiB, got 1000` rather than a generic failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// Dotted key path, e.g. `select.budget.max_per_minute`.
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Prefixes the key with the section it sits in: `budget.x` inside `select` → `select.budget.x`.
    pub fn within(mut self, section: &str) -> Self {
        self.key = format!("{section}.{}", self.key);
        self
    }
}

/// Checks `lo <= value <= hi`, naming `key` and the bounds otherwise.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    if value < lo || value > hi {
        return Err(ConfigError::new(
            key,
            format!("must be between {lo} and {hi}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_name_key_and_bounds() {
        assert!(check_range("a.b", 0.5, 0.0, 1.0).is_ok());
        let e = check_range("iou", 1.5, 0.0, 1.0).unwrap_err();
        assert_eq!(e.to_string(), "iou: must be between 0 and 1, got 1.5");
        assert_eq!(e.within("model").key, "model.iou");
    }
}

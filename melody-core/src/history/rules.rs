//! Which topics keep a history, and how much of it.

use std::time::Duration;

/// How much of one topic's history is kept: the newest messages within every bound
/// set. At least one bound is required (see [`HistoryRules::validate`]).
///
/// ```
/// use std::time::Duration;
/// use melody_core::history::HistoryLimits;
///
/// let limits = HistoryLimits::new()
///     .max_messages(100)
///     .max_age(Duration::from_secs(600));
/// assert_eq!(limits.max_messages, Some(100));
/// assert_eq!(limits.max_bytes, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryLimits {
    /// The most messages kept.
    pub max_messages: Option<usize>,
    /// The most bytes kept (each message counts its encoded WebSocket frame).
    pub max_bytes: Option<usize>,
    /// How long a message is kept after it was published.
    pub max_age: Option<Duration>,
}

impl HistoryLimits {
    /// No bound yet: set at least one.
    ///
    /// ```
    /// use melody_core::history::HistoryLimits;
    ///
    /// assert_eq!(HistoryLimits::new().max_messages, None);
    /// ```
    pub fn new() -> Self {
        HistoryLimits::default()
    }

    /// Keeps at most `count` messages.
    ///
    /// ```
    /// use melody_core::history::HistoryLimits;
    ///
    /// assert_eq!(HistoryLimits::new().max_messages(10).max_messages, Some(10));
    /// ```
    pub fn max_messages(mut self, count: usize) -> Self {
        self.max_messages = Some(count);
        self
    }

    /// Keeps at most `bytes` of encoded frames.
    ///
    /// ```
    /// use melody_core::history::HistoryLimits;
    ///
    /// assert_eq!(HistoryLimits::new().max_bytes(1 << 20).max_bytes, Some(1 << 20));
    /// ```
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Keeps a message for `age` after it was published.
    ///
    /// ```
    /// use std::time::Duration;
    /// use melody_core::history::HistoryLimits;
    ///
    /// let limits = HistoryLimits::new().max_age(Duration::from_secs(60));
    /// assert_eq!(limits.max_age, Some(Duration::from_secs(60)));
    /// ```
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    fn validate(&self, rule: &str) -> Result<(), HistoryRuleError> {
        let unbounded = self.max_messages.is_none() && self.max_bytes.is_none();
        if unbounded && self.max_age.is_none() {
            return Err(HistoryRuleError::Unbounded { rule: rule.into() });
        }
        if self.max_messages == Some(0)
            || self.max_bytes == Some(0)
            || self.max_age == Some(Duration::ZERO)
        {
            return Err(HistoryRuleError::ZeroBound { rule: rule.into() });
        }
        Ok(())
    }
}

/// Which topics keep a history: named topics, and topics starting with a prefix.
/// Off for every topic by default. A named topic's limits win over a prefix's; among
/// prefixes, the longest that matches wins.
///
/// ```
/// use std::time::Duration;
/// use melody_core::history::{HistoryLimits, HistoryRules};
///
/// let rules = HistoryRules::new()
///     .prefix("device/", HistoryLimits::new().max_messages(100).max_age(Duration::from_secs(600)))
///     .topic("news", HistoryLimits::new().max_bytes(1 << 20));
/// assert!(rules.limits_for("device/42").is_some());
/// assert!(rules.limits_for("news").is_some());
/// assert!(rules.limits_for("chat").is_none(), "off unless asked for");
/// assert!(rules.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRules {
    topics: Vec<(String, HistoryLimits)>,
    prefixes: Vec<(String, HistoryLimits)>,
    /// The most topics that keep a history at once (10,000 by default).
    pub max_topics: usize,
    /// The first epoch handed out (random per process by default; set it for
    /// reproducible tests).
    pub epoch_seed: Option<u64>,
}

impl HistoryRules {
    /// No topic keeps a history.
    ///
    /// ```
    /// use melody_core::history::HistoryRules;
    ///
    /// assert!(HistoryRules::new().is_empty());
    /// ```
    pub fn new() -> Self {
        HistoryRules {
            max_topics: 10_000,
            ..HistoryRules::default()
        }
    }

    /// Keeps a history for `topic`.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(5));
    /// assert_eq!(rules.limits_for("news").and_then(|l| l.max_messages), Some(5));
    /// ```
    pub fn topic(mut self, topic: impl Into<String>, limits: HistoryLimits) -> Self {
        self.topics.push((topic.into(), limits));
        self
    }

    /// Keeps a history for every topic starting with `prefix`.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().prefix("room/", HistoryLimits::new().max_messages(50));
    /// assert!(rules.limits_for("room/7").is_some());
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>, limits: HistoryLimits) -> Self {
        self.prefixes.push((prefix.into(), limits));
        self
    }

    /// Sets [`HistoryRules::max_topics`].
    ///
    /// ```
    /// use melody_core::history::HistoryRules;
    ///
    /// assert_eq!(HistoryRules::new().max_topics(3).max_topics, 3);
    /// ```
    pub fn max_topics(mut self, count: usize) -> Self {
        self.max_topics = count;
        self
    }

    /// Sets [`HistoryRules::epoch_seed`].
    ///
    /// ```
    /// use melody_core::history::HistoryRules;
    ///
    /// assert_eq!(HistoryRules::new().epoch_seed(7).epoch_seed, Some(7));
    /// ```
    pub fn epoch_seed(mut self, seed: u64) -> Self {
        self.epoch_seed = Some(seed);
        self
    }

    /// Whether no topic keeps a history.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("a", HistoryLimits::new().max_messages(1));
    /// assert!(!rules.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.prefixes.is_empty()
    }

    /// The limits `topic` keeps its history under, or `None` if it keeps none.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new()
    ///     .prefix("a/", HistoryLimits::new().max_messages(1))
    ///     .prefix("a/b/", HistoryLimits::new().max_messages(2));
    /// assert_eq!(rules.limits_for("a/b/c").and_then(|l| l.max_messages), Some(2));
    /// ```
    pub fn limits_for(&self, topic: &str) -> Option<HistoryLimits> {
        if let Some((_, limits)) = self.topics.iter().find(|(t, _)| t == topic) {
            return Some(*limits);
        }
        self.prefixes
            .iter()
            .filter(|(p, _)| topic.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, limits)| *limits)
    }

    /// Checks every rule: each needs at least one bound, none of them zero.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRuleError, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new());
    /// assert!(matches!(rules.validate(), Err(HistoryRuleError::Unbounded { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), HistoryRuleError> {
        for (name, limits) in self.topics.iter().chain(&self.prefixes) {
            limits.validate(name)?;
        }
        if !self.is_empty() && self.max_topics == 0 {
            return Err(HistoryRuleError::ZeroBound {
                rule: "max_topics".into(),
            });
        }
        Ok(())
    }
}

/// Why [`HistoryRules`] were refused.
///
/// ```
/// use melody_core::history::{HistoryLimits, HistoryRuleError, HistoryRules};
///
/// let rules = HistoryRules::new().prefix("x/", HistoryLimits::new().max_messages(0));
/// assert!(matches!(rules.validate(), Err(HistoryRuleError::ZeroBound { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryRuleError {
    /// A rule sets no bound: its history would grow without limit.
    #[error("history rule {rule:?}: set at least one of max_messages, max_bytes, max_age")]
    Unbounded {
        /// The topic or prefix of the rule.
        rule: String,
    },
    /// A bound is zero: nothing could ever be kept.
    #[error("history rule {rule:?}: bounds must be greater than zero")]
    ZeroBound {
        /// The topic or prefix of the rule (or `max_topics`).
        rule: String,
    },
}

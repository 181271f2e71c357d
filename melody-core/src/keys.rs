//! Per-session key/value store, as olahol/melody's `Keys`.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;

/// A melody-style key/value map attached to a session: any `Send + Sync` value under a
/// string key, read back with its type.
///
/// ```
/// use melody_core::Keys;
///
/// let mut keys = Keys::new();
/// keys.set("user", String::from("ada"));
/// keys.set("room", 7u32);
/// assert_eq!(keys.get::<String>("user").map(String::as_str), Some("ada"));
/// assert_eq!(keys.get::<u32>("room"), Some(&7));
/// assert_eq!(keys.get::<u64>("room"), None, "a get with the wrong type finds nothing");
/// assert!(keys.unset("room").is_some());
/// assert!(!keys.contains("room"));
/// ```
#[derive(Default)]
pub struct Keys {
    // Boxed, and only once a key is set: most sessions never set one, and an empty
    // map would still cost its 48 bytes inline in every session.
    #[allow(clippy::box_collection)]
    map: Option<Box<HashMap<String, Box<dyn Any + Send + Sync>>>>,
}

impl Keys {
    /// An empty map.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let keys = Keys::new();
    /// assert!(keys.is_empty());
    /// ```
    pub fn new() -> Self {
        Keys::default()
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("room", 7u32);
    /// keys.set("room", 8u32);
    /// assert_eq!(keys.get::<u32>("room"), Some(&8), "replaced");
    /// ```
    pub fn set<T: Any + Send + Sync>(&mut self, key: impl Into<String>, value: T) {
        self.map
            .get_or_insert_with(Box::default)
            .insert(key.into(), Box::new(value));
    }

    /// The value under `key` if there is one of type `T`.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("name", String::from("ada"));
    /// assert_eq!(keys.get::<String>("name").map(String::as_str), Some("ada"));
    /// assert_eq!(keys.get::<&str>("name"), None, "stored as a String");
    /// ```
    pub fn get<T: Any>(&self, key: &str) -> Option<&T> {
        self.map
            .as_ref()?
            .get(key)
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// A mutable reference to the value under `key` if there is one of type `T`.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("visits", 1u32);
    /// *keys.get_mut::<u32>("visits").unwrap() += 1;
    /// assert_eq!(keys.get::<u32>("visits"), Some(&2));
    /// ```
    pub fn get_mut<T: Any>(&mut self, key: &str) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(key)
            .and_then(|v| v.downcast_mut::<T>())
    }

    /// The value under `key`, whatever its type.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("level", 3u8);
    /// let any = keys.get_any("level").expect("set above");
    /// assert!(any.is::<u8>());
    /// ```
    pub fn get_any(&self, key: &str) -> Option<&(dyn Any + Send + Sync)> {
        self.map.as_ref()?.get(key).map(|v| v.as_ref())
    }

    /// Removes the value under `key` and returns it.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("token", String::from("secret"));
    /// let old = keys.unset("token").expect("was set");
    /// assert_eq!(old.downcast_ref::<String>().map(String::as_str), Some("secret"));
    /// assert!(keys.unset("token").is_none());
    /// ```
    pub fn unset(&mut self, key: &str) -> Option<Box<dyn Any + Send + Sync>> {
        self.map.as_mut()?.remove(key)
    }

    /// Whether a value is stored under `key`.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("admin", true);
    /// assert!(keys.contains("admin"));
    /// assert!(!keys.contains("guest"));
    /// ```
    pub fn contains(&self, key: &str) -> bool {
        self.map.as_ref().is_some_and(|m| m.contains_key(key))
    }

    /// The stored keys, in no particular order.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("b", 2);
    /// keys.set("a", 1);
    /// let mut names: Vec<&str> = keys.keys().collect();
    /// names.sort();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.iter().flat_map(|m| m.keys().map(String::as_str))
    }

    /// Moves every key of `other` into this map; a key both hold takes `other`'s value.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("user", "ada".to_owned());
    /// let mut more = Keys::new();
    /// more.set("room", 7u32);
    /// keys.extend(more);
    /// assert_eq!(keys.get::<u32>("room"), Some(&7));
    /// assert_eq!(keys.len(), 2);
    /// ```
    pub fn extend(&mut self, other: Keys) {
        let Some(theirs) = other.map else {
            return;
        };
        match &mut self.map {
            Some(ours) => ours.extend(*theirs),
            None => self.map = Some(theirs),
        }
    }

    /// How many keys are stored.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// keys.set("a", 1);
    /// assert_eq!(keys.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether no key is stored.
    ///
    /// ```
    /// use melody_core::Keys;
    ///
    /// let mut keys = Keys::new();
    /// assert!(keys.is_empty());
    /// keys.set("a", 1);
    /// assert!(!keys.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

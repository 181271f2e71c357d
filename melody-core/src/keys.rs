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
    pub fn new() -> Self {
        Keys::default()
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn set<T: Any + Send + Sync>(&mut self, key: impl Into<String>, value: T) {
        self.map
            .get_or_insert_with(Box::default)
            .insert(key.into(), Box::new(value));
    }

    /// The value under `key` if there is one of type `T`.
    pub fn get<T: Any>(&self, key: &str) -> Option<&T> {
        self.map
            .as_ref()?
            .get(key)
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// A mutable reference to the value under `key` if there is one of type `T`.
    pub fn get_mut<T: Any>(&mut self, key: &str) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(key)
            .and_then(|v| v.downcast_mut::<T>())
    }

    /// The value under `key`, whatever its type.
    pub fn get_any(&self, key: &str) -> Option<&(dyn Any + Send + Sync)> {
        self.map.as_ref()?.get(key).map(|v| v.as_ref())
    }

    /// Removes the value under `key` and returns it.
    pub fn unset(&mut self, key: &str) -> Option<Box<dyn Any + Send + Sync>> {
        self.map.as_mut()?.remove(key)
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.map.as_ref().is_some_and(|m| m.contains_key(key))
    }

    /// The stored keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.iter().flat_map(|m| m.keys().map(String::as_str))
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

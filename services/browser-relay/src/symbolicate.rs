//! TEMPORARY interface stub; replaced by the real module (wt-maps).
use std::sync::Arc;
/// stub
pub struct Map;
impl Map {
    /// stub
    pub fn parse(bytes: &[u8]) -> Result<Map, String> {
        sourcemap::SourceMap::from_slice(bytes)
            .map(|_| Map)
            .map_err(|e| e.to_string())
    }
}
/// stub
pub struct MapCache;
impl MapCache {
    /// stub
    pub fn new(_max: usize) -> MapCache {
        MapCache
    }
    /// stub
    pub fn get(&self, _id: i64, load: impl FnOnce() -> Option<Vec<u8>>) -> Option<Arc<Map>> {
        load().and_then(|b| Map::parse(&b).ok()).map(Arc::new)
    }
    /// stub
    pub fn remove(&self, _id: i64) {}
}
/// stub
pub fn file_path(url: &str) -> String {
    url.to_string()
}
/// stub
pub fn rewrite_stack(stack: &str, _map_for: impl FnMut(&str) -> Option<Arc<Map>>) -> String {
    stack.to_string()
}

//! HAL documents: data, `_links`, `_embedded`, served as `application/hal+json`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use cme_engine::{Page, PageError, PageOf};

use crate::problem::ApiError;

pub const HAL: &str = "application/hal+json";

/// A HAL document under construction.
pub struct Hal(Map<String, Value>);

impl Hal {
    pub fn new(data: Value) -> Self {
        match data {
            Value::Object(map) => Hal(map),
            _ => Hal(Map::new()),
        }
    }

    pub fn link(mut self, rel: &str, href: impl Into<String>) -> Self {
        let links = self.0.entry("_links").or_insert_with(|| json!({}));
        links[rel] = json!({ "href": href.into() });
        self
    }

    pub fn embed(mut self, rel: &str, items: Vec<Value>) -> Self {
        let embedded = self.0.entry("_embedded").or_insert_with(|| json!({}));
        embedded[rel] = Value::Array(items);
        self
    }

    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    /// The document as answered: every string passes the masker last, whatever built it.
    pub fn respond(self, status: StatusCode) -> HttpResponse {
        let mut document = self.into_value();
        cme_secrets::mask_strings(&mut document);
        HttpResponse::build(status).content_type(HAL).body(document.to_string())
    }

    pub fn ok(self) -> HttpResponse {
        self.respond(StatusCode::OK)
    }

    /// The document with `items` embedded under `rel`, serialised straight from their
    /// types (the same JSON as `embed` with their values, keys in the same sorted order).
    pub fn embedding_body<T: serde::Serialize>(self, rel: &str, items: &[T]) -> Result<Vec<u8>, ApiError> {
        let document = WithEmbedded { rel, items, rest: &self.0 };
        serde_json::to_vec(&document)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the document: {e}")))
    }

    /// The document with a `Location` header: what a creation answers. Locations are
    /// built from ids and names the engine validated, so they are always header-safe.
    pub fn respond_at(self, status: StatusCode, location: &str) -> HttpResponse {
        let mut response = self.respond(status);
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(location) {
            response.headers_mut().insert(actix_web::http::header::LOCATION, value);
        }
        response
    }
}

/// A document's keys with `_embedded: {rel: items}` among them, in sorted order.
struct WithEmbedded<'a, T> {
    rel: &'a str,
    items: &'a [T],
    rest: &'a Map<String, Value>,
}

impl<T: serde::Serialize> serde::Serialize for WithEmbedded<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const EMBEDDED: &str = "_embedded";
        let mut map = serializer.serialize_map(Some(self.rest.len() + 1))?;
        let mut embedded_written = false;
        for (key, value) in self.rest.iter().filter(|(key, _)| key.as_str() != EMBEDDED) {
            if !embedded_written && key.as_str() > EMBEDDED {
                map.serialize_entry(EMBEDDED, &std::collections::BTreeMap::from([(self.rel, self.items)]))?;
                embedded_written = true;
            }
            map.serialize_entry(key, value)?;
        }
        if !embedded_written {
            map.serialize_entry(EMBEDDED, &std::collections::BTreeMap::from([(self.rel, self.items)]))?;
        }
        map.end()
    }
}

/// The request's own URL (path and query), as the `self` link.
pub fn self_href(req: &HttpRequest) -> String {
    match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    }
}

/// `page` and `size` from the query: page from 1, size 1..=1000 (default 100); a page
/// beyond any list is refused.
pub fn page_of(req: &HttpRequest) -> Result<Page, ApiError> {
    let (mut page, mut size) = (1u64, Page::DEFAULT_SIZE);
    for (key, value) in query_pairs(req) {
        match key.as_str() {
            "page" => page = value.parse().map_err(|_| bad_query(PageError::Page))?,
            "size" => size = value.parse().map_err(|_| bad_query(PageError::Size))?,
            _ => {}
        }
    }
    Page::new(page, size).map_err(bad_query)
}

fn bad_query(error: PageError) -> ApiError {
    ApiError::bad_request(format!("query parameter {error}"), None)
}

/// Decoded query pairs.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

/// Adds a `next` link that seeks past `cursor` (`after=`, replacing any `page` or
/// `after`, keeping every other query parameter) when there is more; a `prev` link only
/// for pages asked by number (a cursor has no way back but the first page).
pub fn seek_paged<T>(
    doc: Hal,
    req: &HttpRequest,
    page: Page,
    listed: &PageOf<T>,
    cursor: Option<String>,
    seeking: bool,
) -> Hal {
    let others: Vec<String> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("after="))
        .map(str::to_string)
        .collect();
    let with = |extra: String| {
        let mut pairs = others.clone();
        pairs.push(extra);
        format!("{}?{}", req.path(), pairs.join("&"))
    };
    let mut doc = doc;
    if let (true, Some(cursor)) = (listed.has_more, cursor) {
        let encoded: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
        doc = doc.link("next", with(format!("after={encoded}")));
    }
    if !seeking && page.number() > 1 {
        doc = doc.link("prev", with(format!("page={}", page.number() - 1)));
    }
    doc
}

/// `size` (1 to 1,000, default 100) and the `after` cursor, read by `parse`, of a list
/// paged by cursor only.
pub fn cursor_page<C>(req: &HttpRequest, parse: impl Fn(&str) -> Option<C>) -> Result<(u64, Option<C>), ApiError> {
    let (mut size, mut after) = (Page::DEFAULT_SIZE, None);
    for (key, value) in query_pairs(req) {
        match key.as_str() {
            "size" | "limit" => {
                size = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=Page::MAX_SIZE).contains(s))
                    .ok_or_else(|| bad_query(PageError::Size))?;
            }
            "after" => {
                after = Some(parse(&value).ok_or_else(|| {
                    ApiError::bad_request(
                        format!("query parameter after: {value:?} is not a cursor of this list (use the next link)"),
                        Some("/after".into()),
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok((size, after))
}

/// One page of a list the engine answers whole (lists bounded by their own caps, each
/// item with a unique key, in list order): up to `size` items after the one keyed
/// `after`, whether more follow, and the cursor of the last item. A cursor naming an item
/// no longer listed is refused: the client starts again from the first page.
pub fn page_of_list<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    size: u64,
) -> Result<(Vec<T>, bool, Option<String>), ApiError> {
    let start = match after {
        None => 0,
        Some(after) => match items.iter().position(|item| key(item) == after) {
            Some(i) => i + 1,
            None => {
                return Err(ApiError::bad_request(
                    format!(
                        "query parameter after: {after:?} names nothing in this list any more; start again without after"
                    ),
                    Some("/after".into()),
                ));
            }
        },
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size as usize).collect();
    let has_more = start + page.len() < total;
    let cursor = page.last().map(&key);
    Ok((page, has_more, cursor))
}

/// Adds a `next` link seeking past `cursor` when more follow, keeping every other query
/// parameter.
pub fn cursor_links(doc: Hal, req: &HttpRequest, has_more: bool, cursor: Option<String>) -> Hal {
    match (has_more, cursor) {
        (true, Some(cursor)) => {
            let mut pairs: Vec<String> = req
                .query_string()
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("after="))
                .map(str::to_string)
                .collect();
            pairs.push(format!("after={}", form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()));
            doc.link("next", format!("{}?{}", req.path(), pairs.join("&")))
        }
        _ => doc,
    }
}

/// Adds `next`/`prev` links keeping every other query parameter.
pub fn paged<T>(doc: Hal, req: &HttpRequest, page: Page, listed: &PageOf<T>) -> Hal {
    let with_page = |n: u64| {
        let mut pairs: Vec<String> = req
            .query_string()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .map(str::to_string)
            .collect();
        pairs.push(format!("page={n}"));
        format!("{}?{}", req.path(), pairs.join("&"))
    };
    let mut doc = doc;
    if listed.has_more {
        doc = doc.link("next", with_page(page.number() + 1));
    }
    if page.number() > 1 {
        doc = doc.link("prev", with_page(page.number() - 1));
    }
    doc
}

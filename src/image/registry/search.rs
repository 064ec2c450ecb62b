//! `berth image search`: a plain term asks Docker Hub's search API
//! (`/v1/search?q=TERM&n=N` on index.docker.io); `REGISTRY/TERM` lists that
//! registry's catalog (`/v2/_catalog`, every page) and keeps the
//! repositories whose name contains TERM. A registry without a catalog is
//! a clear error: the Distribution API has no search of its own.
//!
//! Which source a term goes to, the answers' parsing and the table are
//! pure functions; [`Searcher`] does the two fetches.

use reqwest::blocking::Client;
use reqwest::header::LINK;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::client::{http_client, RetryPolicy, Session};
use super::config::EngineConfig;
use super::credentials::CredentialStore;
use super::RegistryError;
use crate::image::reference::DEFAULT_REGISTRY;
use crate::store::Root;

/// Docker Hub's search service (the v1 index API docker search uses).
pub const HUB_SEARCH_URL: &str = "https://index.docker.io";
/// Points Hub searches elsewhere (a test's fake, a proxy of the index).
pub const HUB_SEARCH_URL_ENV: &str = "BERTH_HUB_SEARCH_URL";
/// docker search's default `--limit`.
pub const DEFAULT_LIMIT: usize = 25;
/// A catalog that keeps pointing at a next page past this is broken.
const MAX_CATALOG_PAGES: usize = 10_000;
/// Search answers and catalog pages are read up to this much.
const MAX_ANSWER: u64 = 8 << 20;
/// docker search cuts descriptions to this many characters.
const DESCRIPTION_WIDTH: usize = 45;
/// The token flow's scope for listing a registry's repositories.
const CATALOG_SCOPE: &str = "registry:catalog:*";

/// Where a search term is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTarget {
    /// Docker Hub's search API.
    Hub { term: String },
    /// `registry`'s catalog, filtered by `term` (empty: everything).
    Catalog { registry: String, term: String },
}

impl SearchTarget {
    /// docker's rule: the part before the first `/` names a registry when
    /// it has a `.` or a `:` or is `localhost`; Docker Hub's own names
    /// (`docker.io/…`) search the Hub.
    pub fn parse(text: &str) -> SearchTarget {
        let text = text.trim();
        if let Some((first, rest)) = text.split_once('/') {
            let is_host = first.contains(['.', ':']) || first == "localhost";
            if is_host {
                let registry = super::credentials::normalize_registry(first);
                if registry == DEFAULT_REGISTRY {
                    return SearchTarget::Hub { term: rest.to_string() };
                }
                return SearchTarget::Catalog {
                    registry,
                    term: rest.to_string(),
                };
            }
        }
        SearchTarget::Hub { term: text.to_string() }
    }
}

/// One repository found. The Hub fills every field; a catalog only names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub star_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_official: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_automated: Option<bool>,
}

impl SearchResult {
    fn named(name: String) -> Self {
        SearchResult {
            name,
            description: None,
            star_count: None,
            is_official: None,
            is_automated: None,
        }
    }
}

/// What a search found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchOutcome {
    pub target: SearchTarget,
    pub results: Vec<SearchResult>,
}

/// Parses the Hub's answer: `{"results": [{"name", "description",
/// "star_count", "is_official", "is_automated"}, …]}` (the v2 API's
/// `repo_name`/`short_description` are accepted too).
pub fn parse_hub_results(body: &[u8]) -> Result<Vec<SearchResult>, String> {
    #[derive(Deserialize)]
    struct Answer {
        results: Option<Vec<Entry>>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(alias = "repo_name")]
        name: String,
        #[serde(default, alias = "short_description")]
        description: Option<String>,
        #[serde(default)]
        star_count: Option<u64>,
        #[serde(default)]
        is_official: Option<bool>,
        #[serde(default)]
        is_automated: Option<bool>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("not a search answer: {e}"))?;
    let entries = answer.results.ok_or("the answer has no results list")?;
    Ok(entries
        .into_iter()
        .map(|e| SearchResult {
            name: e.name,
            description: Some(e.description.unwrap_or_default()),
            star_count: Some(e.star_count.unwrap_or(0)),
            is_official: Some(e.is_official.unwrap_or(false)),
            is_automated: Some(e.is_automated.unwrap_or(false)),
        })
        .collect())
}

/// The repository names of one catalog page (`{"repositories": […]}`).
pub fn parse_catalog(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Page {
        repositories: Option<Vec<String>>,
    }
    let page: Page = serde_json::from_slice(body).map_err(|e| format!("not a catalog page: {e}"))?;
    Ok(page.repositories.unwrap_or_default())
}

/// The target of a `Link: <…>; rel="next"` header (RFC 8288), if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let link = link.trim();
        let target = link.strip_prefix('<')?.split_once('>')?;
        let is_next = target.1.split(';').any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .is_some_and(|rel| rel.trim_matches('"').split(' ').any(|r| r == "next"))
        });
        is_next.then(|| target.0.to_string())
    })
}

/// A link target as a path on the registry: relative ones are; absolute
/// ones lose their scheme and host (the page is asked of the same session).
pub fn link_path(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_string());
    }
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))?;
    let path = &rest[rest.find('/')?..];
    Some(path.to_string())
}

/// Whether a catalog repository matches the term: a case-insensitive
/// substring (docker's Hub search is fuzzier; a catalog has only names).
pub fn matches(repository: &str, term: &str) -> bool {
    repository.to_lowercase().contains(&term.to_lowercase())
}

/// docker search's table: NAME, DESCRIPTION (cut to 45 characters unless
/// `no_trunc`), STARS, OFFICIAL; a catalog's results have names only.
pub fn render_table(outcome: &SearchOutcome, no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = match outcome.target {
        SearchTarget::Catalog { .. } => {
            let mut rows = vec![vec!["NAME".to_string()]];
            rows.extend(outcome.results.iter().map(|r| vec![r.name.clone()]));
            rows
        }
        SearchTarget::Hub { .. } => {
            let mut rows = vec![["NAME", "DESCRIPTION", "STARS", "OFFICIAL"].map(String::from).to_vec()];
            rows.extend(outcome.results.iter().map(|r| {
                let description = r.description.as_deref().unwrap_or("").replace(['\n', '\r', '\t'], " ");
                let description = match no_trunc {
                    true => description,
                    false => ellipsis(&description, DESCRIPTION_WIDTH),
                };
                vec![
                    r.name.clone(),
                    description,
                    r.star_count.unwrap_or(0).to_string(),
                    if r.is_official == Some(true) { "[OK]" } else { "" }.to_string(),
                ]
            }));
            rows
        }
    };
    tabulate(&rows)
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Columns as docker's tabwriter lays them out (minimum width 10, padding
/// 3); the last column is not padded and lines carry no trailing blanks.
fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Runs searches with the engine's registry settings (insecure hosts) and
/// the user's credentials, as pulls do.
pub struct Searcher {
    config: EngineConfig,
    credentials: CredentialStore,
    http: Client,
    retry: RetryPolicy,
    hub_url: String,
}

impl Searcher {
    /// With the engine config of `root`, the user's credential files and
    /// the Hub's URL (or `$BERTH_HUB_SEARCH_URL`).
    pub fn new(root: &Root) -> Result<Self, RegistryError> {
        let hub_url = std::env::var(HUB_SEARCH_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| HUB_SEARCH_URL.to_string());
        Ok(Searcher {
            config: EngineConfig::load(root)?,
            credentials: CredentialStore::from_env(),
            http: http_client()?,
            retry: RetryPolicy::default(),
            hub_url: hub_url.trim_end_matches('/').to_string(),
        })
    }

    /// Up to `limit` results for `query` (`TERM` or `REGISTRY/TERM`).
    /// Errors name the registry and the term.
    pub fn search(&self, query: &str, limit: usize) -> Result<SearchOutcome, RegistryError> {
        let target = SearchTarget::parse(query);
        let results = match &target {
            SearchTarget::Hub { term } => self.search_hub(term, limit).map_err(|source| RegistryError::Search {
                place: format!("Docker Hub ({})", self.hub_url),
                term: term.clone(),
                source: Box::new(source),
            }),
            SearchTarget::Catalog { registry, term } => {
                self.search_catalog(registry, term, limit)
                    .map_err(|source| RegistryError::Search {
                        place: registry.clone(),
                        term: term.clone(),
                        source: Box::new(source),
                    })
            }
        }?;
        Ok(SearchOutcome { target, results })
    }

    fn search_hub(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>, RegistryError> {
        let url = format!("{}/v1/search", self.hub_url);
        let n = limit.to_string();
        let response = self
            .http
            .get(&url)
            .query(&[("q", term), ("n", n.as_str())])
            .send()
            .map_err(|source| match source.is_connect() {
                true => RegistryError::Unreachable {
                    registry: self.hub_url.clone(),
                    source,
                },
                false => RegistryError::Http {
                    url: url.clone(),
                    source,
                },
            })?;
        if !response.status().is_success() {
            return Err(RegistryError::Status {
                url,
                status: response.status().as_u16(),
                detail: String::new(),
            });
        }
        let body = read_answer(response, &url)?;
        let mut results = parse_hub_results(&body).map_err(|reason| RegistryError::InvalidAnswer { url, reason })?;
        results.truncate(limit);
        Ok(results)
    }

    fn search_catalog(&self, registry: &str, term: &str, limit: usize) -> Result<Vec<SearchResult>, RegistryError> {
        // The registry itself, never a mirror (mirrors serve docker.io).
        let endpoint = self
            .config
            .endpoints(registry)
            .pop()
            .ok_or_else(|| RegistryError::InvalidAddress {
                address: registry.to_string(),
                reason: "no endpoint to reach it at".into(),
            })?;
        let credentials = self.credentials.get(registry)?;
        let logged_in = credentials.is_some();
        let session = Session::connect(&self.http, registry, &endpoint, credentials, &self.retry)?;
        let mut results = Vec::new();
        // No `n`: distribution refuses one above its `maxentries` (400
        // PAGINATION_NUMBER_INVALID); its own page size comes with a Link.
        let mut path = "/v2/_catalog".to_string();
        for _ in 0..MAX_CATALOG_PAGES {
            let response = session.send(Method::GET, &path, CATALOG_SCOPE, None, None)?;
            let status = response.status();
            if matches!(
                status,
                StatusCode::NOT_FOUND
                    | StatusCode::METHOD_NOT_ALLOWED
                    | StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
            ) {
                let hint = match (status, logged_in) {
                    (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, false) => {
                        format!("; if it lists repositories only to signed-in users, run `berth login {registry}`")
                    }
                    _ => String::new(),
                };
                return Err(RegistryError::NoCatalog {
                    registry: registry.to_string(),
                    status: status.to_string(),
                    hint,
                });
            }
            if !status.is_success() {
                return Err(session.status_error(response, "", None));
            }
            let next = response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|target| link_path(&target));
            let url = response.url().to_string();
            let body = read_answer(response, &url)?;
            let names = parse_catalog(&body).map_err(|reason| RegistryError::InvalidAnswer { url, reason })?;
            for name in names.into_iter().filter(|name| matches(name, term)) {
                results.push(SearchResult::named(format!("{registry}/{name}")));
                if results.len() >= limit {
                    return Ok(results);
                }
            }
            match next {
                Some(next) if next != path => path = next,
                _ => return Ok(results),
            }
        }
        Ok(results)
    }
}

fn read_answer(response: reqwest::blocking::Response, url: &str) -> Result<Vec<u8>, RegistryError> {
    super::client::read_at_most(response, url, MAX_ANSWER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_go_to_the_hub_or_a_registry_catalog() {
        let hub = |term: &str| SearchTarget::Hub { term: term.into() };
        let catalog = |registry: &str, term: &str| SearchTarget::Catalog {
            registry: registry.into(),
            term: term.into(),
        };
        assert_eq!(SearchTarget::parse("busybox"), hub("busybox"));
        assert_eq!(SearchTarget::parse("library/busybox"), hub("library/busybox"));
        assert_eq!(SearchTarget::parse("docker.io/nginx"), hub("nginx"));
        assert_eq!(SearchTarget::parse("index.docker.io/nginx"), hub("nginx"));
        assert_eq!(
            SearchTarget::parse("127.0.0.1:5000/busy"),
            catalog("127.0.0.1:5000", "busy")
        );
        assert_eq!(
            SearchTarget::parse("localhost/team/app"),
            catalog("localhost", "team/app")
        );
        assert_eq!(SearchTarget::parse("ghcr.io/"), catalog("ghcr.io", ""));
    }

    #[test]
    fn parses_hub_answers() {
        let body = br#"{"num_pages":1,"num_results":2,"page_size":25,"query":"busy","results":[
            {"name":"busybox","description":"Busybox base image.","star_count":3000,"is_official":true,"is_automated":false},
            {"repo_name":"someone/busy","short_description":"","star_count":2,"is_official":false,"is_automated":true},
            {"name":"bare"}]}"#;
        let results = parse_hub_results(body).unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[0],
            SearchResult {
                name: "busybox".into(),
                description: Some("Busybox base image.".into()),
                star_count: Some(3000),
                is_official: Some(true),
                is_automated: Some(false),
            }
        );
        assert_eq!(results[1].name, "someone/busy");
        assert_eq!(results[1].is_automated, Some(true));
        assert_eq!(results[2].star_count, Some(0));
        assert!(parse_hub_results(b"<html>").is_err());
        assert!(parse_hub_results(br#"{"errors":[]}"#).is_err());
    }

    #[test]
    fn hub_tables_read_like_docker_search() {
        let outcome = SearchOutcome {
            target: SearchTarget::Hub { term: "busy".into() },
            results: parse_hub_results(
                br#"{"results":[
                {"name":"busybox","description":"Busybox base image.","star_count":3000,"is_official":true},
                {"name":"someone/busybox-with-a-long-name","description":"A description that is longer than forty-five characters\nand has a newline","star_count":7}]}"#,
            )
            .unwrap(),
        };
        let table = render_table(&outcome, false);
        let expected = "\
NAME                               DESCRIPTION                                     STARS     OFFICIAL
busybox                            Busybox base image.                             3000      [OK]
someone/busybox-with-a-long-name   A description that is longer than forty-five…   7
";
        assert_eq!(table, expected);
        let full = render_table(&outcome, true);
        assert!(full.contains("forty-five characters and has a newline   7"), "{full}");

        let json = serde_json::to_value(&outcome.results).unwrap();
        assert_eq!(json[0]["is_official"], true);
        assert_eq!(json[1]["is_automated"], false);
    }

    #[test]
    fn catalog_tables_name_only_and_empty_ones_have_a_header() {
        let outcome = SearchOutcome {
            target: SearchTarget::Catalog {
                registry: "r:5000".into(),
                term: String::new(),
            },
            results: vec![SearchResult::named("r:5000/team/app".into())],
        };
        assert_eq!(render_table(&outcome, false), "NAME\nr:5000/team/app\n");
        assert_eq!(
            serde_json::to_string(&outcome.results).unwrap(),
            r#"[{"name":"r:5000/team/app"}]"#
        );
        let empty = SearchOutcome {
            results: Vec::new(),
            ..outcome
        };
        assert_eq!(render_table(&empty, false), "NAME\n");
    }

    #[test]
    fn catalog_pages_and_links() {
        assert_eq!(
            parse_catalog(br#"{"repositories":["a","b/c"]}"#).unwrap(),
            vec!["a".to_string(), "b/c".to_string()]
        );
        assert_eq!(
            parse_catalog(br#"{"repositories":null}"#).unwrap(),
            Vec::<String>::new()
        );
        assert!(parse_catalog(b"404 page not found").is_err());
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(
                r#"<https://r.example/v2/_catalog?last=x>; rel=prev, <https://r.example/v2/_catalog?last=y>; rel=next"#
            )
            .as_deref(),
            Some("https://r.example/v2/_catalog?last=y")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(
            link_path("https://r.example:5000/v2/_catalog?last=y").as_deref(),
            Some("/v2/_catalog?last=y")
        );
        assert_eq!(link_path("/v2/_catalog?n=1").as_deref(), Some("/v2/_catalog?n=1"));
        assert_eq!(link_path("_catalog?n=1"), None);
        assert!(matches("berth/BusyBox", "busy"));
        assert!(matches("anything", ""));
        assert!(!matches("berth/app", "busy"));
    }
}

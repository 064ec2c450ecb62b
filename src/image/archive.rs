//! `load` and `save`: docker-save archives, OCI image layouts (as a tar or
//! a directory), and writing an OCI layout tar that docker can load too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{is_sha256_hex, Digest};
use super::index::Index;
use super::reference::{familiar, split_tagged, Reference};
use super::store::ImageStore;
use super::unpack::{decompress, detect_compression, Compression};
use super::ImageError;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// JSON members of an archive bigger than this are not metadata.
const MAX_METADATA: u64 = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

#[derive(Debug, Deserialize)]
struct LayoutIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// A member of a tar archive, once read.
enum Member {
    Bytes(Vec<u8>),
    Blob(Digest),
}

/// Where an archive's members come from.
enum Source {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: BTreeMap<String, Member>,
        links: BTreeMap<String, String>,
    },
}

/// Normalizes a member path; `None` if it is absolute or climbs out.
fn member_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if path.starts_with('/') {
        return None;
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn blob_path_digest(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .filter(|hex| is_sha256_hex(hex))
        .and_then(|hex| Digest::from_hex(hex).ok())
}

impl Source {
    fn name(&self) -> &Path {
        match self {
            Source::Dir(path) | Source::Tar { path, .. } => path,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> ImageError {
        ImageError::InvalidArchive {
            path: self.name().to_path_buf(),
            reason: reason.into(),
        }
    }

    fn resolve<'a>(&'a self, path: &'a str) -> Option<&'a Member> {
        let Source::Tar { members, links, .. } = self else {
            return None;
        };
        let mut current = path;
        for _ in 0..16 {
            if let Some(member) = members.get(current) {
                return Some(member);
            }
            current = links.get(current)?;
        }
        None
    }

    fn exists(&self, path: &str) -> bool {
        match self {
            Source::Dir(dir) => dir.join(path).is_file(),
            Source::Tar { .. } => self.resolve(path).is_some(),
        }
    }

    fn read(&self, store: &ImageStore, path: &str) -> Result<Vec<u8>, ImageError> {
        let path = member_path(path).ok_or_else(|| self.invalid(format!("member {path:?} escapes the archive")))?;
        match self {
            Source::Dir(dir) => {
                let file = dir.join(&path);
                std::fs::read(&file).map_err(ImageError::io("cannot read", file))
            }
            Source::Tar { .. } => match self.resolve(&path) {
                Some(Member::Bytes(bytes)) => Ok(bytes.clone()),
                Some(Member::Blob(digest)) => store.blobs.read_blob(digest),
                None => Err(self.invalid(format!("missing member {path:?}"))),
            },
        }
    }

    /// Stores member `path` as a blob, checking it against `expected` (or
    /// the digest its `blobs/sha256/<hex>` name implies).
    fn blob(&self, store: &ImageStore, path: &str, expected: Option<&Digest>) -> Result<Digest, ImageError> {
        let path = member_path(path).ok_or_else(|| self.invalid(format!("member {path:?} escapes the archive")))?;
        let implied = blob_path_digest(&path);
        let expected = expected.or(implied.as_ref());
        let digest = match self {
            Source::Dir(dir) => {
                let file = dir.join(&path);
                let reader = File::open(&file).map_err(ImageError::io("cannot open", &file))?;
                store.blobs.write_blob_from_reader(reader, expected)?.0
            }
            Source::Tar { .. } => match self.resolve(&path) {
                Some(Member::Bytes(bytes)) => store.blobs.write_blob_from_reader(&bytes[..], expected)?.0,
                Some(Member::Blob(digest)) => digest.clone(),
                None => return Err(self.invalid(format!("missing member {path:?}"))),
            },
        };
        match expected {
            Some(expected) if *expected != digest => Err(ImageError::DigestMismatch {
                what: format!("archive member {path}"),
                expected: expected.clone(),
                actual: digest,
            }),
            _ => Ok(digest),
        }
    }
}

/// Reads a tar (optionally compressed) archive, storing blobs as it goes.
fn read_tar(store: &ImageStore, path: &Path) -> Result<Source, ImageError> {
    let file = File::open(path).map_err(ImageError::io("cannot open", path))?;
    let invalid = |reason: String| ImageError::InvalidArchive {
        path: path.to_path_buf(),
        reason,
    };
    let mut archive = tar::Archive::new(decompress(file, None)?);
    let mut members = BTreeMap::new();
    let mut links = BTreeMap::new();
    for entry in archive.entries().map_err(|e| invalid(e.to_string()))? {
        let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = member_path(&raw) else {
            return Err(invalid(format!("member {raw:?} escapes the archive")));
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let joined = if kind.is_symlink() {
                let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                format!("{parent}/{target}")
            } else {
                target
            };
            if let Some(target) = member_path(&joined) {
                links.insert(name, target);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let small = name.ends_with(".json") || name == "oci-layout" || name == "repositories";
        let member = if let Some(digest) = blob_path_digest(&name) {
            Member::Blob(store.blobs.write_blob_from_reader(&mut entry, Some(&digest))?.0)
        } else if small && entry.size() <= MAX_METADATA {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| invalid(format!("{name}: {e}")))?;
            Member::Bytes(bytes)
        } else {
            Member::Blob(store.blobs.write_blob_from_reader(&mut entry, None)?.0)
        };
        members.insert(name, member);
    }
    Ok(Source::Tar {
        path: path.to_path_buf(),
        members,
        links,
    })
}

/// The normalized `name:tag` an index descriptor's annotations give.
fn annotated_name(descriptor: &Descriptor) -> Option<String> {
    let full = descriptor.annotations.get(NAME_ANNOTATION).cloned().or_else(|| {
        // A bare `latest` is only a tag; without a repository the image
        // loads unnamed.
        descriptor
            .annotations
            .get(REF_ANNOTATION)
            .filter(|r| r.contains('/') || r.contains(':'))
            .cloned()
    })?;
    Reference::parse(&full).ok()?.tagged()
}

impl ImageStore {
    /// Loads a docker-save tar, an OCI layout tar or an OCI layout
    /// directory. Returns what was loaded: familiar `name:tag`s, or the
    /// image id of an unnamed image.
    pub fn load_archive(&self, path: &Path) -> Result<Vec<String>, ImageError> {
        let _content = self.content_lock()?;
        let source = if path.is_dir() {
            Source::Dir(path.to_path_buf())
        } else {
            read_tar(self, path)?
        };
        let images = if source.exists("index.json") && (source.exists("oci-layout") || !source.exists("manifest.json"))
        {
            self.collect_oci(&source)?
        } else if source.exists("manifest.json") {
            self.collect_docker(&source)?
        } else {
            return Err(source.invalid("neither an OCI layout (index.json) nor a docker archive (manifest.json)"));
        };
        if images.is_empty() {
            return Err(source.invalid("it contains no image for this platform"));
        }
        let mut loaded = Vec::new();
        for (manifest, names) in images {
            let id = self.register(&manifest, &names)?;
            if names.is_empty() {
                loaded.push(id.to_string());
            }
            for name in names {
                let (repo, tag) = split_tagged(&name);
                loaded.push(format!("{}:{tag}", familiar(repo)));
            }
        }
        Ok(loaded)
    }

    fn collect_oci(&self, source: &Source) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let index: LayoutIndex = serde_json::from_slice(&source.read(self, "index.json")?)
            .map_err(ImageError::json(format!("index.json of {}", source.name().display())))?;
        let mut images: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for descriptor in &index.manifests {
            let name = annotated_name(descriptor);
            if let Some(manifest) = self.collect_descriptor(source, descriptor, 0)? {
                let names = images.entry(manifest).or_default();
                names.extend(name.filter(|n| !names.contains(n)));
            }
        }
        Ok(images.into_iter().collect())
    }

    /// Stores the manifest a descriptor names (choosing this platform from
    /// an index) with its config and layers.
    fn collect_descriptor(
        &self,
        source: &Source,
        descriptor: &Descriptor,
        depth: usize,
    ) -> Result<Option<Digest>, ImageError> {
        let digest = Digest::parse(&descriptor.digest)?;
        let path = format!("blobs/sha256/{}", digest.hex());
        match descriptor.media_type.as_str() {
            OCI_INDEX | DOCKER_LIST if depth < 4 => {
                source.blob(self, &path, Some(&digest))?;
                let nested: LayoutIndex = serde_json::from_slice(&self.blobs.read_blob(&digest)?)
                    .map_err(ImageError::json(format!("image index {digest}")))?;
                let arch = super::import::host_arch();
                let pick = nested
                    .manifests
                    .iter()
                    .find(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                    })
                    .or_else(|| nested.manifests.iter().find(|d| d.platform.is_none()));
                match pick {
                    Some(d) => self.collect_descriptor(source, d, depth + 1),
                    None => Ok(None),
                }
            }
            OCI_MANIFEST | DOCKER_MANIFEST | "" => {
                source.blob(self, &path, Some(&digest))?;
                #[derive(Deserialize)]
                struct Manifest {
                    config: Descriptor,
                    #[serde(default)]
                    layers: Vec<Descriptor>,
                }
                let manifest: Manifest = serde_json::from_slice(&self.blobs.read_blob(&digest)?)
                    .map_err(ImageError::json(format!("manifest {digest}")))?;
                for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                    let blob_digest = Digest::parse(&blob.digest)?;
                    source.blob(self, &format!("blobs/sha256/{}", blob_digest.hex()), Some(&blob_digest))?;
                }
                Ok(Some(digest))
            }
            _ => Ok(None),
        }
    }

    fn collect_docker(&self, source: &Source) -> Result<Vec<(Digest, Vec<String>)>, ImageError> {
        let entries: Vec<DockerManifest> = serde_json::from_slice(&source.read(self, "manifest.json")?).map_err(
            ImageError::json(format!("manifest.json of {}", source.name().display())),
        )?;
        let mut images = Vec::new();
        for entry in entries {
            let config = source.blob(self, &entry.config, None)?;
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let digest = source.blob(self, layer, None)?;
                let mut head = [0_u8; 4];
                let n = self.blobs.open_blob(&digest)?.read(&mut head).unwrap_or(0);
                let media_type = match detect_compression(None, &head[..n])? {
                    Compression::None => "application/vnd.oci.image.layer.v1.tar",
                    Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                    Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
                };
                layers.push(self.descriptor(media_type, &digest)?);
            }
            let manifest = self.write_manifest(self.descriptor(OCI_CONFIG, &config)?, layers)?;
            let mut names = Vec::new();
            for tag in entry.repo_tags.unwrap_or_default() {
                names.extend(Reference::parse(&tag)?.tagged());
            }
            images.push((manifest, names));
        }
        Ok(images)
    }

    pub(super) fn descriptor(&self, media_type: &str, digest: &Digest) -> Result<Descriptor, ImageError> {
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: self.blobs.blob_size(digest)?,
            annotations: BTreeMap::new(),
            platform: None,
        })
    }

    /// Writes an OCI manifest for a config and layers; returns its digest.
    pub(super) fn write_manifest(&self, config: Descriptor, layers: Vec<Descriptor>) -> Result<Digest, ImageError> {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(ImageError::json("manifest"))?;
        Ok(self.blobs.write_blob(&bytes)?.0)
    }

    /// Writes an OCI layout tar of `references`, with a docker
    /// `manifest.json` alongside so `docker load` accepts it too.
    pub fn save(&self, references: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        let index = Index::load(&self.root)?;
        // Manifest → names to save it under (empty: saved unnamed).
        let mut chosen: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for reference in references {
            let (manifest, name) = self.lookup(&index, reference)?;
            chosen.entry(manifest).or_default().extend(name);
        }
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut descriptors = Vec::new();
        let mut docker = Vec::new();
        for (manifest, names) in &chosen {
            let image = self.load_stored(manifest)?;
            let layers: Vec<Digest> = image.layer_blobs()?.into_iter().map(|(d, _)| d).collect();
            blobs.insert(manifest.clone());
            blobs.insert(image.config_digest.clone());
            blobs.extend(layers.iter().cloned());
            let base = self.descriptor(OCI_MANIFEST, manifest)?;
            if names.is_empty() {
                descriptors.push(base.clone());
            }
            for name in names {
                let mut d = base.clone();
                d.annotations.insert(NAME_ANNOTATION.to_string(), name.clone());
                d.annotations
                    .insert(REF_ANNOTATION.to_string(), split_tagged(name).1.to_string());
                descriptors.push(d);
            }
            docker.push(DockerManifest {
                config: format!("blobs/sha256/{}", image.config_digest.hex()),
                repo_tags: Some(
                    names
                        .iter()
                        .map(|n| {
                            let (repo, tag) = split_tagged(n);
                            format!("{}:{tag}", familiar(repo))
                        })
                        .collect(),
                ),
                layers: layers.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect(),
            });
        }
        let layout_index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": descriptors,
        });
        let index_bytes = serde_json::to_vec(&layout_index).map_err(ImageError::json("index.json"))?;
        let docker_bytes = serde_json::to_vec(&docker).map_err(ImageError::json("manifest.json"))?;
        let mut builder = tar::Builder::new(out);
        let add = |builder: &mut tar::Builder<&mut dyn Write>, name: &str, size: u64, data: &mut dyn Read| {
            let mut header = tar::Header::new_ustar();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, data)
        };
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let result = (|| -> Result<(), ImageError> {
            let io = |e| ImageError::io("cannot write archive", "(output)")(e);
            add(&mut builder, "oci-layout", layout.len() as u64, &mut &layout[..]).map_err(io)?;
            for digest in &blobs {
                let mut file = self.blobs.open_blob(digest)?;
                let size = self.blobs.blob_size(digest)?;
                add(&mut builder, &format!("blobs/sha256/{}", digest.hex()), size, &mut file).map_err(io)?;
            }
            for (name, bytes) in [("index.json", &index_bytes), ("manifest.json", &docker_bytes)] {
                add(&mut builder, name, bytes.len() as u64, &mut &bytes[..]).map_err(io)?;
            }
            builder.finish().map_err(io)
        })();
        result
    }
}

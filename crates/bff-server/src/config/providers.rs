//! `[providers.<name>]` and `default_provider`. Each section is `bff_oidc::ProviderSection`,
//! owned by the OIDC adapter; this module reads them one by one, so a broken provider does not
//! hide the problems of the next, and checks the names.

use std::collections::BTreeMap;

use bff_domain::ProviderId;
use bff_oidc::ProviderSection;

use super::problem::KeyPath;
use super::reader::Reader;

/// The provider sections by name, as read.
#[derive(Debug, Default)]
pub(crate) struct ProviderSections {
    /// Every name written, valid or not: `default_provider` must be one of them.
    pub(crate) names: Vec<String>,
    /// The sections, when every one of them is valid.
    pub(crate) sections: Option<BTreeMap<ProviderId, ProviderSection>>,
}

/// Reads `providers`: a table of at least one section.
pub(crate) fn read(reader: &mut Reader<'_>, value: Option<toml::Value>) -> ProviderSections {
    let path = KeyPath::top("providers");
    let Some(value) = value else {
        reader.problem(&path, "at least one [providers.<name>] section is required");
        return ProviderSections::default();
    };
    let Some(tables) = reader.read::<BTreeMap<String, toml::Value>>(&path, value) else {
        return ProviderSections::default();
    };
    if tables.is_empty() {
        reader.problem(&path, "at least one [providers.<name>] section is required");
    }
    let names: Vec<String> = tables.keys().cloned().collect();
    let mut sections = Some(BTreeMap::new());
    for (name, table) in tables {
        let section_path = path.key(&name);
        let id = ProviderId::parse(&name)
            .map_err(|e| reader.problem(&section_path, e.to_string()))
            .ok();
        let section = reader
            .read::<ProviderSection>(&section_path, table)
            .filter(|section| {
                let problems = section.credential_problems();
                for (key, message) in &problems {
                    reader.problem(&section_path.key(key), message.clone());
                }
                problems.is_empty()
            });
        match (id, section, sections.as_mut()) {
            (Some(id), Some(section), Some(all)) => {
                all.insert(id, section);
            }
            _ => sections = None,
        }
    }
    if names.is_empty() {
        sections = None;
    }
    ProviderSections { names, sections }
}

/// Reads `default_provider`, which must name one of `names`.
pub(crate) fn read_default(
    reader: &mut Reader<'_>,
    value: Option<toml::Value>,
    names: &[String],
) -> Option<ProviderId> {
    let path = KeyPath::top("default_provider");
    let Some(value) = value else {
        reader.problem(
            &path,
            "is required: the provider used when a login names none",
        );
        return None;
    };
    let name: String = reader.read(&path, value)?;
    // With no provider at all, that problem is reported already.
    if !names.is_empty() && !names.contains(&name) {
        reader.problem(
            &path,
            format!(
                "{name:?} is not one of the configured providers ({})",
                names.join(", ")
            ),
        );
        return None;
    }
    ProviderId::parse(&name).ok()
}

/// Reports provider URLs that are plain `http://` unless development mode allows them.
pub(crate) fn check_plain_http(
    reader: &mut Reader<'_>,
    sections: &BTreeMap<ProviderId, ProviderSection>,
) {
    for (id, section) in sections {
        let path = KeyPath::top("providers").key(id.as_str());
        if section.issuer.url().is_plain_http() {
            super::plain_http_problem(reader, &path.key("issuer"), section.issuer.as_str());
        }
        if let Some(uri) = &section.post_logout_redirect_uri
            && uri.is_plain_http()
        {
            super::plain_http_problem(reader, &path.key("post_logout_redirect_uri"), uri.as_str());
        }
    }
}

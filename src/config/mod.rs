//! `barman.conf` as Barman reads it: which file, the `[barman]` section, one section
//! per server (or model), `configuration_files_directory/*.conf` in sorted order,
//! `<barman_home>/.barman.auto.conf`, inheritance of global options, `%(name)s`
//! interpolation, quoting and `None`.
//!
//! Loading happens in two steps because Barman switches to `barman_user` and sets up
//! logging between them: [`MainConfig::load`] reads the main file and the `[barman]`
//! section, then [`MainConfig::complete`] reads the other files and resolves every
//! server. Syntax errors and invalid values are [`ConfigError`]s (exit code 2);
//! configurations that parse but cannot work (a server without `conninfo`) leave the
//! server *disabled* with the reasons in its `msg_list`, as Barman does.

pub mod docs;
pub mod ini;
pub mod options;
pub mod values;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use ini::IniFile;
use options::{OptionSpec, Scope, OPTIONS};
use values::Value;

/// The files tried, in order, when neither `-c` nor `BARMAN_CONFIG_FILE` names one.
pub const DEFAULT_CONFIG_FILES: &[&str] = &[
    "~/.barman.conf",
    "/etc/barman.conf",
    "/etc/barman/barman.conf",
];

/// Names no server may have.
pub const RESERVED_NAMES: &[&str] = &["all", "barman"];

/// An error in the configuration: the file (and line, section and key when known),
/// what is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong, naming the file, section and key.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl ConfigError {
    fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> ConfigError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A line of a configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The section the line is in.
        section: String,
        /// The 1-based line number.
        line: usize,
    },
    /// The active model.
    Model(String),
}

impl Source {
    /// The file, or `default`, as `diagnose --show-config-source` prints it.
    pub fn describe(&self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::File { path, .. } => path.display().to_string(),
            Source::Model(name) => format!("model {name}"),
        }
    }

    fn location(&self) -> String {
        match self {
            Source::Default => "built-in default".into(),
            Source::File {
                path,
                section,
                line,
            } => format!("[{section}] in {}, line {line}", path.display()),
            Source::Model(name) => format!("model '{name}'"),
        }
    }
}

/// One resolved option.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The value; `None` when unset.
    pub value: Option<Value>,
    /// Where it came from.
    pub source: Source,
}

/// A raw value with its location.
#[derive(Debug, Clone)]
struct Raw {
    text: String,
    path: PathBuf,
    section: String,
    line: usize,
}

/// All sections of all files, merged by name (a later file's value wins).
#[derive(Debug, Default, Clone)]
struct Sections {
    map: BTreeMap<String, BTreeMap<String, Raw>>,
    /// Where each section was first declared, to report duplicates.
    declared: BTreeMap<String, (PathBuf, usize)>,
}

impl Sections {
    fn add_file(&mut self, file: &IniFile) {
        for section in &file.sections {
            self.declared
                .entry(section.name.clone())
                .or_insert_with(|| (file.path.clone(), section.line));
            let values = self.map.entry(section.name.clone()).or_default();
            for entry in &section.entries {
                values.insert(
                    entry.key.clone(),
                    Raw {
                        text: entry.value.clone(),
                        path: file.path.clone(),
                        section: section.name.clone(),
                        line: entry.line,
                    },
                );
            }
        }
    }

    fn get(&self, section: &str, key: &str) -> Option<&Raw> {
        self.map.get(section).and_then(|s| s.get(key))
    }
}

/// The main configuration file and its `[barman]` section, before the other files
/// are read.
#[derive(Debug, Clone)]
pub struct MainConfig {
    /// The main configuration file.
    pub path: PathBuf,
    file: IniFile,
    /// The `[barman]` settings.
    pub global: GlobalConfig,
}

/// The settings of `[barman]`.
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    settings: BTreeMap<&'static str, Setting>,
    /// Every key written in `[barman]`, with its raw value, for `diagnose`.
    pub raw: BTreeMap<String, String>,
}

impl GlobalConfig {
    /// A setting of `[barman]`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        debug_assert!(options::find(name).is_some(), "unknown option {name}");
        self.settings.get(name).and_then(|s| s.value.as_ref())
    }

    /// The setting and where it came from.
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.get(name)
    }

    /// A text or path setting.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// `barman_home`.
    pub fn barman_home(&self) -> &Path {
        Path::new(self.text("barman_home").unwrap_or(""))
    }

    /// `barman_user`.
    pub fn barman_user(&self) -> &str {
        self.text("barman_user").unwrap_or("barman")
    }

    /// `barman_lock_directory`.
    pub fn lock_directory(&self) -> &Path {
        Path::new(self.text("barman_lock_directory").unwrap_or(""))
    }

    /// `log_file`, if any.
    pub fn log_file(&self) -> Option<&Path> {
        self.text("log_file").map(Path::new)
    }

    /// `log_level` as a name or number.
    pub fn log_level(&self) -> &str {
        self.text("log_level").unwrap_or("INFO")
    }

    /// `log_format`.
    pub fn log_format(&self) -> &str {
        self.text("log_format")
            .unwrap_or("%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s")
    }

    /// `configuration_files_directory`, if any.
    pub fn configuration_files_directory(&self) -> Option<&Path> {
        self.text("configuration_files_directory").map(Path::new)
    }

    /// Every global setting in table order.
    pub fn settings(&self) -> impl Iterator<Item = (&'static str, &Setting)> {
        self.settings.iter().map(|(k, v)| (*k, v))
    }
}

/// A resolved server section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The section name.
    pub name: String,
    settings: BTreeMap<&'static str, Setting>,
    /// Why the server is disabled; empty when it is not.
    pub msg_list: Vec<String>,
    /// Warnings to show whenever a command uses the server.
    pub warnings: Vec<String>,
    /// The model applied from `.active-model.auto`, if any.
    pub active_model: Option<String>,
}

impl ServerConfig {
    /// The value of an option, `None` when unset.
    pub fn get(&self, name: &str) -> Option<&Value> {
        debug_assert!(options::find(name).is_some(), "unknown option {name}");
        self.settings.get(name).and_then(|s| s.value.as_ref())
    }

    /// The setting and where it came from.
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.settings.get(name)
    }

    /// Every setting in alphabetical order.
    pub fn settings(&self) -> impl Iterator<Item = (&'static str, &Setting)> {
        self.settings.iter().map(|(k, v)| (*k, v))
    }

    /// A boolean option (false when unset).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Bool(true)))
    }

    /// A text, path or choice option.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The `encryption` setting when it asks for one (`gpg`), which this implementation
    /// does not do: what would be stored must not pretend to be encrypted.
    pub fn encryption(&self) -> Option<&str> {
        self.text("encryption")
            .filter(|e| !e.eq_ignore_ascii_case("none"))
    }

    /// A path option.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.text(name).map(Path::new)
    }

    /// An integer option.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    /// `active`.
    pub fn active(&self) -> bool {
        self.flag("active")
    }

    /// Whether configuration problems disable the server.
    pub fn disabled(&self) -> bool {
        !self.msg_list.is_empty()
    }

    /// `description`, or the empty string.
    pub fn description(&self) -> &str {
        self.text("description").unwrap_or("")
    }

    /// Whether the server is a passive node (`primary_ssh_command` set).
    pub fn passive_node(&self) -> bool {
        self.text("primary_ssh_command").is_some()
    }

    fn set(&mut self, name: &'static str, value: Value) {
        if let Some(setting) = self.settings.get_mut(name) {
            setting.value = Some(value);
        }
    }

    fn disable(&mut self, message: String) {
        self.msg_list.push(message);
    }
}

/// A model: overrides applied on top of servers of the same cluster.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The section name.
    pub name: String,
    /// The options the model sets, parsed.
    pub overrides: BTreeMap<&'static str, Setting>,
}

impl ModelConfig {
    /// The model's `cluster`.
    pub fn cluster(&self) -> Option<&str> {
        match self.overrides.get("cluster").and_then(|s| s.value.as_ref()) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main configuration file.
    pub path: PathBuf,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
    /// `[barman]`.
    pub global: GlobalConfig,
    /// Servers by name.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Models by name.
    pub models: BTreeMap<String, ModelConfig>,
    /// Warnings found while reading (unknown options, ignored files).
    pub warnings: Vec<String>,
    /// Problems that involve several servers (conflicting paths); commands that work
    /// on servers refuse to run while there are any.
    pub global_errors: Vec<String>,
}

impl Config {
    /// A server by name.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.get(name)
    }
}

/// Find the configuration file: `-c FILE`, else `BARMAN_CONFIG_FILE`, else the first
/// of [`DEFAULT_CONFIG_FILES`] that exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let from_env = std::env::var_os("BARMAN_CONFIG_FILE").filter(|v| !v.is_empty());
    let named = explicit
        .map(|p| (p.to_path_buf(), "-c"))
        .or_else(|| from_env.map(|v| (PathBuf::from(v), "BARMAN_CONFIG_FILE")));
    if let Some((path, how)) = named {
        let path = PathBuf::from(options::expand_tilde(&path.to_string_lossy()));
        if !path.exists() {
            return Err(ConfigError::new(format!(
                "Configuration file '{}' does not exist",
                path.display()
            ))
            .hint(format!(
                "check the path given with {how}, or create the file (see barman.conf.example)"
            )));
        }
        return Ok(path);
    }
    for candidate in DEFAULT_CONFIG_FILES {
        let path = PathBuf::from(options::expand_tilde(candidate));
        if path.exists() {
            return Ok(path);
        }
    }
    Err(
        ConfigError::new("Could not find any configuration file at default locations.").hint(
            format!(
        "create one of {} or name one with -c FILE or BARMAN_CONFIG_FILE (see barman.conf.example)",
        DEFAULT_CONFIG_FILES.join(", ")
    ),
        ),
    )
}

fn read_ini(path: &Path) -> Result<IniFile, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot read configuration file '{}': {}",
            path.display(),
            io_reason(&e)
        ))
        .hint("check that the file exists and that the barman user may read it")
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::new(format!(
            "configuration file '{}' is not valid UTF-8",
            path.display()
        ))
    })?;
    ini::parse(path, &text).map_err(|e| {
        ConfigError::new(format!("cannot parse configuration file {e}"))
            .hint("barman.conf is an INI file: [section] headers, then 'option = value' lines")
    })
}

/// The reason of an I/O error without Rust's "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl MainConfig {
    /// Read the main file and resolve `[barman]`.
    pub fn load(path: &Path) -> Result<MainConfig, ConfigError> {
        let file = read_ini(path)?;
        let mut sections = Sections::default();
        sections.add_file(&file);
        if !sections.map.contains_key("barman") {
            return Err(ConfigError::new(format!(
                "configuration file '{}' has no [barman] section",
                path.display()
            ))
            .hint("add a [barman] section with at least barman_home"));
        }
        let global = resolve_global(&sections, path)?;
        Ok(MainConfig {
            path: path.to_path_buf(),
            file,
            global,
        })
    }

    /// Read `configuration_files_directory`, `.barman.auto.conf`, and resolve every
    /// server and model.
    pub fn complete(self) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let mut files = vec![self.file];
        if let Some(dir) = self.global.configuration_files_directory() {
            files.extend(read_config_directory(dir, &mut warnings)?);
        }
        check_include_files(&files[0], &files[1..])?;
        check_duplicate_sections(&files)?;
        let mut sections = Sections::default();
        for file in &files {
            sections.add_file(file);
        }
        let auto_conf = self.global.barman_home().join(".barman.auto.conf");
        if auto_conf.is_file() {
            let file = read_ini(&auto_conf)?;
            check_include_files(&files[0], std::slice::from_ref(&file))?;
            sections.add_file(&file);
            files.push(file);
        }
        let mut config = Config {
            path: self.path,
            files: files.iter().map(|f| f.path.clone()).collect(),
            global: self.global,
            servers: BTreeMap::new(),
            models: BTreeMap::new(),
            warnings,
            global_errors: Vec::new(),
        };
        validate_keys(&sections, &mut config.warnings);
        for name in sections.map.keys() {
            if name == "barman" || name == "DEFAULT" {
                continue;
            }
            if RESERVED_NAMES.contains(&name.as_str()) {
                let (path, line) = &sections.declared[name];
                return Err(ConfigError::new(format!(
                    "the reserved word '{name}' is not allowed as server name ({}, line {line})",
                    path.display()
                ))
                .hint("rename the section"));
            }
            if is_model(&sections, name)? {
                let model = resolve_model(&sections, name, &config.global)?;
                config.models.insert(name.clone(), model);
            } else {
                let server = resolve_server(&sections, name, &config.global)?;
                config.servers.insert(name.clone(), server);
            }
        }
        apply_active_models(&mut config);
        for server in config.servers.values_mut() {
            check_server(server);
        }
        config.global_errors = check_conflicting_paths(&mut config.servers);
        Ok(config)
    }
}

/// Every `*.conf` file of the directory, in sorted order.
fn read_config_directory(
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<IniFile>, ConfigError> {
    let hint = "fix configuration_files_directory in [barman] or the directory's permissions";
    let metadata = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(format!(
                "Ignoring the \"configuration_files_directory\" option as \"{}\" is not a directory",
                dir.display()
            ));
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(ConfigError::new(format!(
                "cannot read configuration_files_directory '{}': {}",
                dir.display(),
                io_reason(&e)
            ))
            .hint(hint))
        }
    };
    if !metadata.is_dir() {
        return Err(ConfigError::new(format!(
            "configuration_files_directory '{}' is not a directory",
            dir.display()
        ))
        .hint(hint));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::new(format!(
            "cannot read configuration_files_directory '{}': {}",
            dir.display(),
            io_reason(&e)
        ))
        .hint(hint)
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::new(format!(
                "cannot read configuration_files_directory '{}': {}",
                dir.display(),
                io_reason(&e)
            ))
            .hint(hint)
        })?;
        let path = entry.path();
        let is_conf = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".conf"));
        if is_conf {
            paths.push(path);
        }
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(read_ini(&path)?);
        } else {
            warnings.push(format!(
                "Discarding configuration file: {} (not a file)",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    Ok(files)
}

/// Included files may not change `[barman]`.
fn check_include_files(main: &IniFile, included: &[IniFile]) -> Result<(), ConfigError> {
    let main_global: HashMap<&str, &str> = main
        .sections
        .iter()
        .filter(|s| s.name == "barman")
        .flat_map(|s| s.entries.iter())
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    for file in included {
        for section in file.sections.iter().filter(|s| s.name == "barman") {
            for entry in &section.entries {
                if main_global.get(entry.key.as_str()) != Some(&entry.value.as_str()) {
                    return Err(ConfigError::new(format!(
                        "the configuration file {} contains a not empty [barman] section (line {}: {})",
                        file.path.display(),
                        entry.line,
                        entry.key
                    ))
                    .hint(format!(
                        "global options belong in {}; remove the [barman] section from this file",
                        main.path.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A server or model section may be written only once across all files.
fn check_duplicate_sections(files: &[IniFile]) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, (&Path, usize)> = HashMap::new();
    for file in files {
        for section in &file.sections {
            if section.name == "barman" || section.name == "DEFAULT" {
                continue;
            }
            if let Some((path, line)) = seen.get(section.name.as_str()) {
                return Err(ConfigError::new(format!(
                    "duplicate server section [{}]: {}, line {} and {}, line {}",
                    section.name,
                    path.display(),
                    line,
                    file.path.display(),
                    section.line
                ))
                .hint(
                    "each server must be configured in one section only; merge the two sections",
                ));
            }
            seen.insert(&section.name, (&file.path, section.line));
        }
    }
    Ok(())
}

/// Warn about options that do not exist or do not belong where they are.
fn validate_keys(sections: &Sections, warnings: &mut Vec<String>) {
    for (name, values) in &sections.map {
        if name == "DEFAULT" {
            continue;
        }
        let is_model_section = values
            .get("model")
            .is_some_and(|r| values::parse_bool(&unquote(&r.text)).unwrap_or(false));
        for key in values.keys() {
            let known = options::find(key);
            let allowed = match (name.as_str(), known) {
                (_, None) => key == "disabled" && name != "barman",
                ("barman", Some(o)) => o.scope.global() || o.scope.server(),
                (_, Some(o)) if is_model_section => o.scope.model() || key == "model",
                (_, Some(o)) => o.scope.server(),
            };
            if !allowed {
                warnings.push(format!(
                    "Invalid configuration option \"{key}\" in [{name}] section."
                ));
            } else if name == "barman" {
                if let Some(o) = known.filter(|o| o.scope.server() && !o.scope.global()) {
                    warnings.push(format!(
                        "Option \"{}\" in [barman] section is not inherited by servers and has no effect; set it in each server section.",
                        o.name
                    ));
                }
            }
        }
    }
}

fn is_model(sections: &Sections, name: &str) -> Result<bool, ConfigError> {
    let Some(raw) = sections.get(name, "model") else {
        return Ok(false);
    };
    values::parse_bool(&unquote(&raw.text)).map_err(|reason| {
        invalid_value(
            "model",
            &raw.text,
            &Source::File {
                path: raw.path.clone(),
                section: raw.section.clone(),
                line: raw.line,
            },
            &reason,
        )
    })
}

fn invalid_value(key: &str, text: &str, source: &Source, reason: &str) -> ConfigError {
    ConfigError::new(format!(
        "invalid value '{text}' for {key} ({}): {reason}",
        source.location()
    ))
    .hint(format!(
        "fix {key} in the configuration; see docs/configuration.md for its syntax"
    ))
}

/// Strip one pair of matching surrounding quotes, as Barman does.
pub fn unquote(text: &str) -> String {
    let b = text.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        text[1..text.len() - 1].to_string()
    } else {
        text.to_string()
    }
}

/// Resolution of options for one section, with `%(name)s` interpolation.
struct Resolver<'a> {
    sections: &'a Sections,
    /// The section being resolved (`barman` for global options).
    section: &'a str,
    /// `name` and `barman_home` for interpolation.
    vars: Vec<(&'static str, String)>,
    /// Options of this section already interpolated (text after quotes stripped).
    cache: RefCell<HashMap<&'static str, Option<(String, Source)>>>,
    /// Options being resolved, to detect reference cycles.
    stack: RefCell<Vec<&'static str>>,
}

impl<'a> Resolver<'a> {
    fn new(sections: &'a Sections, section: &'a str) -> Resolver<'a> {
        Resolver {
            sections,
            section,
            vars: Vec::new(),
            cache: RefCell::new(HashMap::new()),
            stack: RefCell::new(Vec::new()),
        }
    }

    /// A resolver for a server or model section: `%(name)s` and `%(barman_home)s`
    /// are known.
    fn for_server(sections: &'a Sections, name: &'a str, global: &GlobalConfig) -> Resolver<'a> {
        let mut resolver = Resolver::new(sections, name);
        resolver.vars = vec![
            ("name", name.to_string()),
            ("barman_home", global.barman_home().display().to_string()),
        ];
        resolver
    }

    /// Where the raw text of an option comes from: the section itself, `[DEFAULT]`,
    /// `[barman]` for inherited options, then the built-in default.
    fn raw(&self, spec: &OptionSpec) -> Option<Raw> {
        if let Some(raw) = self.sections.get(self.section, spec.name) {
            return Some(raw.clone());
        }
        if let Some(raw) = self.sections.get("DEFAULT", spec.name) {
            return Some(raw.clone());
        }
        if self.section != "barman" && spec.scope.inherited() {
            if let Some(raw) = self.sections.get("barman", spec.name) {
                return Some(raw.clone());
            }
        }
        None
    }

    /// The final text of an option (interpolated, unquoted), `None` when unset.
    fn text(&self, spec: &'static OptionSpec) -> Result<Option<(String, Source)>, ConfigError> {
        if let Some(hit) = self.cache.borrow().get(spec.name) {
            return Ok(hit.clone());
        }
        if self.stack.borrow().contains(&spec.name) {
            let chain = self.stack.borrow().join(" -> ");
            return Err(ConfigError::new(format!(
                "options of [{}] refer to each other in a loop through %(...)s: {chain} -> {}",
                self.section, spec.name
            )));
        }
        self.stack.borrow_mut().push(spec.name);
        let result = self.text_uncached(spec);
        self.stack.borrow_mut().pop();
        let result = result?;
        self.cache.borrow_mut().insert(spec.name, result.clone());
        Ok(result)
    }

    fn text_uncached(
        &self,
        spec: &'static OptionSpec,
    ) -> Result<Option<(String, Source)>, ConfigError> {
        let (text, source, home_section) = match self.raw(spec) {
            Some(raw) => {
                let source = Source::File {
                    path: raw.path.clone(),
                    section: raw.section.clone(),
                    line: raw.line,
                };
                (raw.text, source, raw.section)
            }
            None => match spec.default {
                Some(default) => (default.to_string(), Source::Default, self.section.into()),
                None => return Ok(None),
            },
        };
        let text = if spec.name == "log_format" {
            // Python logging's own `%(field)s` syntax: not interpolated, but `%%`
            // (needed for ConfigParser) still means `%`.
            if source == Source::Default {
                text
            } else {
                text.replace("%%", "%")
            }
        } else if source == Source::Default && spec.default.is_some_and(|d| d.contains("%(")) {
            // A default that refers to an unset option is unset (Barman's
            // `"%(conninfo)s" % vars` gives "None").
            match self.interpolate(&text, &home_section, spec.name, &source) {
                Ok(text) => text,
                Err(e) if e.message.contains("refers to an option that is not set") => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        } else {
            self.interpolate(&text, &home_section, spec.name, &source)?
        };
        let text = unquote(&text);
        if text.is_empty() || text == "None" {
            // Explicitly unset: no inheritance; the built-in default still applies.
            if source == Source::Default {
                return Ok(None);
            }
            return match spec.default {
                Some(default) => {
                    let text = self.interpolate(default, self.section, spec.name, &source)?;
                    Ok(Some((unquote(&text), Source::Default)))
                }
                None => Ok(None),
            };
        }
        Ok(Some((text, source)))
    }

    /// Python ConfigParser's BasicInterpolation: `%(key)s` and `%%`.
    fn interpolate(
        &self,
        text: &str,
        home_section: &str,
        key: &str,
        source: &Source,
    ) -> Result<String, ConfigError> {
        let fail = |reason: String| {
            ConfigError::new(format!(
                "cannot interpolate {key} = '{text}' ({}): {reason}",
                source.location()
            ))
            .hint("write %(option)s to refer to another option and %% for a literal %")
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
                continue;
            }
            let Some(after) = rest.strip_prefix("%(") else {
                return Err(fail("'%' must be followed by '%' or '('".into()));
            };
            let Some(close) = after.find(")s") else {
                return Err(fail("bad interpolation variable reference".into()));
            };
            let name = after[..close].to_lowercase();
            rest = &after[close + 2..];
            out.push_str(&self.lookup(&name, home_section).map_err(|e| {
                if e.message.contains("loop") {
                    e
                } else {
                    fail(e.message)
                }
            })?);
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, name: &str, home_section: &str) -> Result<String, ConfigError> {
        if let Some((_, v)) = self.vars.iter().find(|(k, _)| *k == name) {
            return Ok(v.clone());
        }
        if let Some(spec) = options::find(name) {
            let applies = if self.section == "barman" {
                spec.scope.global()
            } else {
                spec.scope.server()
            };
            if applies {
                return match self.text(spec)? {
                    Some((text, _)) => Ok(text),
                    None => Err(ConfigError::new(format!(
                        "%({name})s refers to an option that is not set"
                    ))),
                };
            }
        }
        for section in [home_section, "DEFAULT"] {
            if let Some(raw) = self.sections.get(section, name) {
                let source = Source::File {
                    path: raw.path.clone(),
                    section: raw.section.clone(),
                    line: raw.line,
                };
                return self.interpolate(&raw.text, section, name, &source);
            }
        }
        Err(ConfigError::new(format!(
            "%({name})s refers to an option that is not set"
        )))
    }

    /// Resolve and parse one option.
    fn setting(&self, spec: &'static OptionSpec) -> Result<Setting, ConfigError> {
        let Some((text, source)) = self.text(spec)? else {
            let value = match spec.kind {
                // An unset flag set is the empty set (with its implied flags).
                options::Kind::Flags(_) => spec.kind.parse("").ok().flatten(),
                _ => None,
            };
            return Ok(Setting {
                value,
                source: Source::Default,
            });
        };
        let value = spec
            .kind
            .parse(&text)
            .map_err(|reason| invalid_value(spec.name, &text, &source, &reason))?;
        Ok(Setting { value, source })
    }
}

fn resolve_global(sections: &Sections, path: &Path) -> Result<GlobalConfig, ConfigError> {
    let resolver = Resolver::new(sections, "barman");
    let home_spec = options::find("barman_home").expect("barman_home is in the table");
    if resolver.setting(home_spec)?.value.is_none() {
        return Err(ConfigError::new(format!(
            "Parameter \"barman_home\" is required in [barman] section ({})",
            path.display()
        ))
        .hint("set barman_home to the directory that holds the backups, e.g. barman_home = /var/lib/barman"));
    }
    let mut settings = BTreeMap::new();
    for spec in options::global_options() {
        settings.insert(spec.name, resolver.setting(spec)?);
    }
    let raw = sections.map["barman"]
        .iter()
        .map(|(k, v)| (k.clone(), v.text.clone()))
        .collect();
    Ok(GlobalConfig { settings, raw })
}

fn resolve_server(
    sections: &Sections,
    name: &str,
    global: &GlobalConfig,
) -> Result<ServerConfig, ConfigError> {
    let resolver = Resolver::for_server(sections, name, global);
    let mut settings = BTreeMap::new();
    for spec in options::server_options() {
        settings.insert(spec.name, resolver.setting(spec)?);
    }
    Ok(ServerConfig {
        name: name.to_string(),
        settings,
        msg_list: Vec::new(),
        warnings: Vec::new(),
        active_model: None,
    })
}

fn resolve_model(
    sections: &Sections,
    name: &str,
    global: &GlobalConfig,
) -> Result<ModelConfig, ConfigError> {
    let resolver = Resolver::for_server(sections, name, global);
    let mut overrides = BTreeMap::new();
    for key in sections.map[name].keys() {
        let Some(spec) = options::find(key).filter(|o| o.scope.model()) else {
            continue;
        };
        if spec.name == "model" {
            continue;
        }
        let setting = resolver.setting(spec)?;
        overrides.insert(
            spec.name,
            Setting {
                value: setting.value,
                source: Source::Model(name.to_string()),
            },
        );
    }
    if !overrides.contains_key("cluster") {
        let (path, line) = &sections.declared[name];
        return Err(ConfigError::new(format!(
            "Parameter \"cluster\" is required in [{name}] section ({}, line {line})",
            path.display()
        ))
        .hint("a model applies to the servers of one cluster: set cluster in the model section"));
    }
    Ok(ModelConfig {
        name: name.to_string(),
        overrides,
    })
}

/// Apply the model named in `<backup_directory>/.active-model.auto`, if any.
fn apply_active_models(config: &mut Config) {
    for server in config.servers.values_mut() {
        let Some(dir) = server.path("backup_directory") else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(dir.join(".active-model.auto")) else {
            continue;
        };
        let model_name = text.trim();
        if model_name.is_empty() {
            continue;
        }
        let Some(model) = config.models.get(model_name) else {
            server.disable(format!(
                "Model '{model_name}' is set as the active model for the server '{}' but the model does not exist.",
                server.name
            ));
            continue;
        };
        let cluster = server.text("cluster").unwrap_or(&server.name).to_string();
        if model.cluster() != Some(cluster.as_str()) {
            server.warnings.push(format!(
                "Model '{}' has 'cluster={}', which is not compatible with 'cluster={}' from server '{}'",
                model.name,
                model.cluster().unwrap_or(""),
                cluster,
                server.name
            ));
            continue;
        }
        for (name, setting) in &model.overrides {
            server.settings.insert(name, setting.clone());
        }
        server.active_model = Some(model.name.clone());
    }
}

/// Barman's rules that disable a server whose configuration cannot work.
fn check_server(server: &mut ServerConfig) {
    let name = server.name.clone();
    if server.text("conninfo").is_none() {
        server.disable(format!(
            "PostgreSQL connection: Missing 'conninfo' parameter for server '{name}'"
        ));
    }
    let method = server.text("backup_method").unwrap_or("rsync").to_string();
    let streaming = server.flag("streaming_archiver");
    if (method == "postgres" || streaming) && server.text("streaming_conninfo").is_none() {
        server.disable(format!(
            "Streaming connection: Missing 'streaming_conninfo' parameter for server '{name}'"
        ));
    }
    if method == "postgres" {
        if server.text("tablespace_bandwidth_limit").is_some() {
            server.disable(
                "tablespace_bandwidth_limit option is not supported by postgres backup_method"
                    .into(),
            );
        }
        if matches!(server.text("reuse_backup"), Some("copy" | "link")) {
            server.disable("reuse_backup option is not supported by postgres backup_method".into());
        }
        if server.flag("network_compression") {
            server.disable(
                "network_compression option is not supported by postgres backup_method".into(),
            );
        }
    } else {
        server.disable(format!(
            "backup_method '{method}' is not supported: this barman takes base backups over the streaming replication protocol only (set backup_method = postgres)"
        ));
    }
    if !server.flag("archiver") && streaming && server.text("slot_name").is_none() {
        server.disable(
            "Streaming-only archiver requires 'streaming_conninfo' and 'slot_name' options to be properly configured"
                .into(),
        );
    }
    if !server.flag("archiver") && !streaming {
        server.warnings.push(format!(
            "No archiver enabled for server '{name}'. Please turn on 'archiver', 'streaming_archiver' or both"
        ));
        server.warnings.push("Forcing 'archiver = on'".into());
        server.set("archiver", Value::Bool(true));
    }
}

/// The directories of a server that must not be shared.
const SERVER_PATHS: &[&str] = &[
    "backup_directory",
    "basebackups_directory",
    "errors_directory",
    "incoming_wals_directory",
    "streaming_wals_directory",
    "wals_directory",
];

impl ServerConfig {
    /// The server's own directories (backups, WAL, incoming, errors) that are set; each
    /// belongs to this server alone.
    pub fn directories(&self) -> impl Iterator<Item = &Path> + '_ {
        SERVER_PATHS.iter().filter_map(|label| self.path(label))
    }

    /// The directories `check` and `backup` create when missing: the server's own and
    /// `xlogdb_directory` (which servers may share, the file name being the server's).
    pub fn directories_to_create(&self) -> impl Iterator<Item = &Path> + '_ {
        self.directories().chain(self.path("xlogdb_directory"))
    }
}

/// Paths shared inside a server disable it; paths shared between servers are global
/// errors (as in Barman's `_check_conflicting_paths`).
fn check_conflicting_paths(servers: &mut BTreeMap<String, ServerConfig>) -> Vec<String> {
    let mut owners: HashMap<PathBuf, (&'static str, String)> = HashMap::new();
    let mut global_errors = Vec::new();
    for server in servers.values_mut() {
        let mut labels: Vec<&'static str> = SERVER_PATHS.to_vec();
        labels.sort_unstable();
        for label in labels {
            let Some(path) = server.path(label).map(Path::to_path_buf) else {
                continue;
            };
            let real = real_path(&path);
            let shown = if real == path {
                format!("{label}={}", path.display())
            } else {
                format!(
                    "{label}={} (symlink to: {})",
                    path.display(),
                    real.display()
                )
            };
            match owners.get(&real) {
                None => {
                    owners.insert(real, (label, server.name.clone()));
                }
                Some((other_label, other_server)) if *other_server == server.name => {
                    let msg = format!(
                        "Conflicting path: {shown} conflicts with '{other_label}' for server '{other_server}'"
                    );
                    server.disable(msg);
                }
                Some((other_label, other_server)) => global_errors.push(format!(
                    "Conflicting path: {shown} for server '{}' conflicts with '{other_label}' for server '{other_server}'",
                    server.name
                )),
            }
        }
    }
    global_errors
}

/// `os.path.realpath`: resolve symlinks of the part that exists, keep the rest.
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut tail = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Every option of the table, for documentation checks.
pub fn all_options() -> &'static [OptionSpec] {
    OPTIONS
}

/// Whether a scope allows an option in `[barman]`.
pub fn allowed_in_global(scope: Scope) -> bool {
    scope.global()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "barman.conf", text);
        MainConfig::load(&path)?.complete()
    }

    const BASE: &str = "[barman]\nbarman_home = /srv/barman\nbarman_user = postgres\n";

    #[test]
    fn servers_inherit_global_options_and_get_defaults() {
        let cfg = load(&format!(
            "{BASE}compression = gzip\nretention_policy = REDUNDANCY 3\n\n[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = barman\nretention_policy = RECOVERY WINDOW OF 2 WEEKS\n"
        ))
        .unwrap();
        let pg = cfg.server("pg").unwrap();
        assert_eq!(pg.text("compression"), Some("gzip"));
        assert_eq!(
            pg.get("retention_policy").unwrap().display(),
            "RECOVERY WINDOW OF 2 WEEKS"
        );
        assert_eq!(
            pg.path("backup_directory"),
            Some(Path::new("/srv/barman/pg"))
        );
        assert_eq!(
            pg.path("wals_directory"),
            Some(Path::new("/srv/barman/pg/wals"))
        );
        assert_eq!(
            pg.path("xlogdb_directory"),
            Some(Path::new("/srv/barman/pg/wals"))
        );
        assert_eq!(pg.text("streaming_conninfo"), Some("host=pg"));
        assert_eq!(pg.text("cluster"), Some("pg"));
        assert_eq!(
            pg.text("streaming_archiver_name"),
            Some("barman_receive_wal")
        );
        assert!(!pg.disabled(), "{:?}", pg.msg_list);
        assert!(matches!(
            pg.setting("compression").unwrap().source,
            Source::File { ref section, line: 4, .. } if section == "barman"
        ));
        assert_eq!(
            pg.setting("minimum_redundancy").unwrap().source,
            Source::Default
        );
    }

    #[test]
    fn none_and_empty_values_stop_inheritance() {
        let cfg = load(&format!(
            "{BASE}compression = gzip\nstreaming_archiver = on\n[a]\nconninfo = x\ncompression = None\n[b]\nconninfo = x\ncompression =\nstreaming_archiver = None\n"
        ))
        .unwrap();
        assert_eq!(cfg.server("a").unwrap().get("compression"), None);
        assert_eq!(cfg.server("b").unwrap().get("compression"), None);
        // a boolean left unset falls back to its built-in default, not to [barman]
        assert!(!cfg.server("b").unwrap().flag("streaming_archiver"));
    }

    #[test]
    fn quotes_are_stripped_and_interpolation_works() {
        let cfg = load(&format!(
            "{BASE}[pg]\nconninfo = 'host=pg user=barman'\ndescription = \"Main %% server %(name)s\"\nbackup_directory = /data/%(name)s\nwals_directory = %(backup_directory)s/archive\n"
        ))
        .unwrap();
        let pg = cfg.server("pg").unwrap();
        assert_eq!(pg.text("conninfo"), Some("host=pg user=barman"));
        assert_eq!(pg.description(), "Main % server pg");
        assert_eq!(
            pg.path("wals_directory"),
            Some(Path::new("/data/pg/archive"))
        );
        assert_eq!(
            pg.path("basebackups_directory"),
            Some(Path::new("/data/pg/base"))
        );
    }

    #[test]
    fn bad_interpolation_names_file_section_and_key() {
        let e = load(&format!(
            "{BASE}[pg]\nconninfo = x\ndescription = %(nowhere)s\n"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("cannot interpolate description"),
            "{}",
            e.message
        );
        assert!(e.message.contains("[pg] in"), "{}", e.message);
        assert!(e.message.contains("line 6"), "{}", e.message);
        assert!(e
            .message
            .contains("%(nowhere)s refers to an option that is not set"));
        let e = load(&format!("{BASE}[pg]\nconninfo = x\ndescription = 100%\n")).unwrap_err();
        assert!(
            e.message.contains("'%' must be followed by"),
            "{}",
            e.message
        );
        let e = load(&format!(
            "{BASE}[pg]\nconninfo = x\nbackup_directory = %(wals_directory)s/x\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("loop"), "{}", e.message);
    }

    #[test]
    fn malformed_values_are_errors_naming_the_place() {
        let e = load(&format!(
            "{BASE}[pg]\nconninfo = x\nretention_policy = KEEP 3\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "invalid value 'KEEP 3' for retention_policy ([pg] in {}, line 6): not a retention policy (use 'REDUNDANCY n' or 'RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS')",
                e.message.split(" in ").nth(1).unwrap().split(", line").next().unwrap()
            )
        );
        let e = load(&format!(
            "{BASE}last_backup_minimum_size = 10 GB\n[pg]\nconninfo = x\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("invalid value '10 GB' for last_backup_minimum_size ([barman] in"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("docs/configuration.md"));
    }

    #[test]
    fn barman_home_is_required() {
        let e = load("[barman]\nlog_level = INFO\n").unwrap_err();
        assert!(e
            .message
            .starts_with("Parameter \"barman_home\" is required in [barman] section"));
        let e = load("[pg]\nconninfo = x\n").unwrap_err();
        assert!(e.message.contains("has no [barman] section"));
    }

    #[test]
    fn reserved_server_names_are_refused() {
        let e = load(&format!("{BASE}[all]\nconninfo = x\n")).unwrap_err();
        assert!(e.message.contains("the reserved word 'all' is not allowed"));
    }

    #[test]
    fn unknown_and_misplaced_options_warn() {
        let cfg = load(&format!(
            "{BASE}conninfo = x\nfoo = 1\n[pg]\nconninfo = x\nbarman_home = /y\nbogus_key = 1\ndisabled = true\n"
        ))
        .unwrap();
        let w = cfg.warnings.join("\n");
        assert!(
            w.contains("Invalid configuration option \"foo\" in [barman] section."),
            "{w}"
        );
        assert!(
            w.contains("Invalid configuration option \"barman_home\" in [pg] section."),
            "{w}"
        );
        assert!(
            w.contains("Invalid configuration option \"bogus_key\" in [pg] section."),
            "{w}"
        );
        assert!(!w.contains("\"disabled\""), "{w}");
        assert!(
            w.contains("Option \"conninfo\" in [barman] section is not inherited"),
            "{w}"
        );
    }

    #[test]
    fn configuration_directory_is_read_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        fs::create_dir(&conf_d).unwrap();
        write(&conf_d, "b.conf", "[pg2]\nconninfo = two\n");
        write(&conf_d, "a.conf", "[pg1]\nconninfo = one\n");
        write(&conf_d, "ignored.txt", "[nope]\nconninfo = x\n");
        let main = write(
            dir.path(),
            "barman.conf",
            &format!(
                "{BASE}configuration_files_directory = {}\n",
                conf_d.display()
            ),
        );
        let cfg = MainConfig::load(&main).unwrap().complete().unwrap();
        assert_eq!(cfg.servers.keys().collect::<Vec<_>>(), ["pg1", "pg2"]);
        assert_eq!(cfg.files.len(), 3);
        assert!(cfg.files[1].ends_with("a.conf"));
    }

    #[test]
    fn duplicate_server_sections_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        fs::create_dir(&conf_d).unwrap();
        write(&conf_d, "pg.conf", "[pg]\nconninfo = two\n");
        let main = write(
            dir.path(),
            "barman.conf",
            &format!(
                "{BASE}configuration_files_directory = {}\n[pg]\nconninfo = one\n",
                conf_d.display()
            ),
        );
        let e = MainConfig::load(&main).unwrap().complete().unwrap_err();
        assert!(
            e.message.starts_with("duplicate server section [pg]:"),
            "{}",
            e.message
        );
        assert!(e.message.contains("pg.conf, line 1"), "{}", e.message);
        let e = load(&format!("{BASE}[pg]\nconninfo = a\n[pg]\nconninfo = b\n")).unwrap_err();
        assert!(e.message.contains("duplicate server section [pg]"));
    }

    #[test]
    fn a_barman_section_in_an_included_file_is_refused_unless_identical() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        fs::create_dir(&conf_d).unwrap();
        write(
            &conf_d,
            "same.conf",
            "[barman]\nbarman_home = /srv/barman\n",
        );
        let main = write(
            dir.path(),
            "barman.conf",
            &format!(
                "{BASE}configuration_files_directory = {}\n",
                conf_d.display()
            ),
        );
        MainConfig::load(&main).unwrap().complete().unwrap();
        write(&conf_d, "x.conf", "[barman]\nbarman_home = /elsewhere\n");
        let e = MainConfig::load(&main).unwrap().complete().unwrap_err();
        assert!(
            e.message.contains("contains a not empty [barman] section"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_configuration_directory_warns_and_a_file_in_its_place_fails() {
        let cfg = load(&format!(
            "{BASE}configuration_files_directory = /nonexistent/barman.d\n"
        ))
        .unwrap();
        assert!(cfg.warnings[0].contains("is not a directory"));
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "notadir", "");
        let e = load(&format!(
            "{BASE}configuration_files_directory = {}\n",
            file.display()
        ))
        .unwrap_err();
        assert!(e.message.contains("is not a directory"), "{}", e.message);
    }

    #[test]
    fn servers_that_cannot_work_are_disabled_with_reasons() {
        let cfg = load(&format!(
            "{BASE}[nocon]\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = s\n[rsync]\nconninfo = x\n[noslot]\nconninfo = x\nbackup_method = postgres\nstreaming_archiver = on\n[reuse]\nconninfo = x\nbackup_method = postgres\narchiver = on\nreuse_backup = link\n"
        ))
        .unwrap();
        let nocon = cfg.server("nocon").unwrap();
        assert_eq!(
            nocon.msg_list,
            [
                "PostgreSQL connection: Missing 'conninfo' parameter for server 'nocon'",
                "Streaming connection: Missing 'streaming_conninfo' parameter for server 'nocon'"
            ]
        );
        let rsync = cfg.server("rsync").unwrap();
        assert!(rsync.msg_list[0].starts_with("backup_method 'rsync' is not supported"));
        assert_eq!(
            rsync.warnings,
            [
                "No archiver enabled for server 'rsync'. Please turn on 'archiver', 'streaming_archiver' or both",
                "Forcing 'archiver = on'"
            ]
        );
        assert!(rsync.flag("archiver"));
        assert!(cfg.server("noslot").unwrap().msg_list[0]
            .starts_with("Streaming-only archiver requires"));
        assert_eq!(
            cfg.server("reuse").unwrap().msg_list,
            ["reuse_backup option is not supported by postgres backup_method"]
        );
    }

    #[test]
    fn shared_directories_are_reported() {
        let cfg = load(&format!(
            "{BASE}[a]\nconninfo = x\nbackup_method = postgres\narchiver = on\nwals_directory = /srv/shared\n[b]\nconninfo = x\nbackup_method = postgres\narchiver = on\nwals_directory = /srv/shared\n[c]\nconninfo = x\nbackup_method = postgres\narchiver = on\nerrors_directory = /srv/barman/c/wals\n"
        ))
        .unwrap();
        assert_eq!(
            cfg.global_errors,
            ["Conflicting path: wals_directory=/srv/shared for server 'b' conflicts with 'wals_directory' for server 'a'"]
        );
        assert_eq!(
            cfg.server("c").unwrap().msg_list,
            ["Conflicting path: wals_directory=/srv/barman/c/wals conflicts with 'errors_directory' for server 'c'"]
        );
    }

    #[test]
    fn models_need_a_cluster_and_apply_when_active() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        fs::create_dir_all(home.join("pg")).unwrap();
        fs::write(home.join("pg/.active-model.auto"), "failover\n").unwrap();
        let main = write(
            dir.path(),
            "barman.conf",
            &format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = host=a\nbackup_method = postgres\narchiver = on\n[failover]\nmodel = true\ncluster = pg\nconninfo = host=b\n",
                home.display()
            ),
        );
        let cfg = MainConfig::load(&main).unwrap().complete().unwrap();
        let pg = cfg.server("pg").unwrap();
        assert_eq!(pg.text("conninfo"), Some("host=b"));
        assert_eq!(pg.active_model.as_deref(), Some("failover"));
        assert!(cfg.models.contains_key("failover"));
        assert!(!cfg.servers.contains_key("failover"));

        let e = load(&format!("{BASE}[m]\nmodel = true\nconninfo = x\n")).unwrap_err();
        assert!(e.message.contains("\"cluster\" is required in [m] section"));
    }

    #[test]
    fn auto_conf_overrides_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(".barman.auto.conf"),
            "[pg]\ndescription = from auto conf\n",
        )
        .unwrap();
        let main = write(
            dir.path(),
            "barman.conf",
            &format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = x\ndescription = from main\n",
                dir.path().display()
            ),
        );
        let cfg = MainConfig::load(&main).unwrap().complete().unwrap();
        assert_eq!(cfg.server("pg").unwrap().description(), "from auto conf");
    }

    #[test]
    fn the_example_configuration_parses_and_its_server_works() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("barman.conf.example");
        let cfg = MainConfig::load(&path).unwrap().complete().unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        let pg = cfg.server("pg").expect("the example defines [pg]");
        assert!(!pg.disabled(), "{:?}", pg.msg_list);
        assert_eq!(pg.text("compression"), Some("gzip"));
        assert_eq!(cfg.global.barman_user(), "barman");
    }

    #[test]
    fn locate_prefers_the_explicit_file_and_reports_a_missing_one() {
        let e = locate(Some(Path::new("/nonexistent/barman.conf"))).unwrap_err();
        assert_eq!(
            e.message,
            "Configuration file '/nonexistent/barman.conf' does not exist"
        );
    }
}

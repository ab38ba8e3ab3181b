//! The layers, merged by figment: the table's defaults, then the TOML file,
//! then the `CHARGELEDGER_*` environment (each setting's own variable: other
//! `CHARGELEDGER_*` variables, such as the tests', are not settings).

use std::path::{Path, PathBuf};

use figment::{
    providers::{Format, Toml},
    value::{Dict, Map, Value},
    Figment, Metadata, Profile, Provider,
};

use super::{
    settings::{Setting, CONFIG_FILE_ENV, SETTINGS},
    values::SettingValue,
    ConfigError,
};

/// Where the environment layer's values come from: `std::env::var` in the
/// binary, a map in unit tests (which must not change the process environment).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The merged layers, read one setting at a time.
pub(super) struct Layers {
    figment: Figment,
}

/// One layer: settings by file key, and a name for errors.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

const ENVIRONMENT: &str = "the environment";

impl Layers {
    /// Defaults, then `file` (or the file `CHARGELEDGER_CONFIG` names), then the environment.
    /// An empty variable counts as unset.
    pub(super) fn new(file: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let defaults = SETTINGS.iter().filter_map(|s| Some((s.key.to_owned(), Value::from(s.default?)))).collect();
        let mut figment = Figment::new().merge(Layer { name: "the defaults".into(), dict: defaults });
        if let Some(path) = file.map(Path::to_path_buf).or_else(|| var(CONFIG_FILE_ENV).map(PathBuf::from)) {
            figment = figment.merge(file_layer(&path)?);
        }
        let environment = SETTINGS
            .iter()
            .filter_map(|s| {
                let value = var(s.env).or_else(|| s.alias.and_then(var))?;
                Some((s.key.to_owned(), Value::from(value)))
            })
            .collect();
        figment = figment.merge(Layer { name: ENVIRONMENT.into(), dict: environment });
        Ok(Self { figment })
    }

    /// The setting `key`, when some layer sets it.
    pub(super) fn get<T: SettingValue>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Ok(value) = self.figment.find_value(key) else { return Ok(None) };
        let setting = Setting::by_key(key).ok_or_else(|| ConfigError(format!("{key} is not in the settings table")))?;
        let origin = match self.figment.get_metadata(value.tag()).map(|m| m.name.as_ref()) {
            Some(ENVIRONMENT) => format!("from {ENVIRONMENT}"),
            Some(layer) => format!("`{key}` in {layer}"),
            None => "from an unknown layer".into(),
        };
        let raw = match &value {
            Value::String(_, s) => s.clone(),
            Value::Bool(_, b) => b.to_string(),
            Value::Char(_, c) => c.to_string(),
            Value::Num(_, n) => match (n.to_i128(), n.to_u128(), n.to_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, f) => f.unwrap_or(f64::NAN).to_string(),
            },
            Value::Dict(..) | Value::Array(..) | Value::Empty(..) => {
                return Err(invalid(setting, &origin, None, "must be a string, a number or a boolean"))
            }
        };
        T::parse(&raw).map(Some).map_err(|why| invalid(setting, &origin, Some(&raw), &why))
    }

    /// A setting with a default (always set: the defaults layer holds it).
    pub(super) fn require<T: SettingValue>(&self, key: &str) -> Result<T, ConfigError> {
        self.get(key)?.ok_or_else(|| ConfigError(format!("{key} has no value (the table gives it a default)")))
    }
}

/// `CHARGELEDGER_X="value" is not valid: why (from …)`; a secret's value is never repeated.
fn invalid(setting: &Setting, origin: &str, raw: Option<&str>, why: &str) -> ConfigError {
    let shown = match raw {
        Some(raw) if !setting.secret => format!("={raw:?}"),
        _ => String::new(),
    };
    ConfigError(format!("{}{shown} is not valid: {why} ({origin})", setting.env))
}

/// The TOML file: only keys of the table (a misspelt key is an error, not ignored).
fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {shown}: {e}")))?;
    let mut data = Toml::string(&text).data().map_err(|e| ConfigError(format!("{shown}: {e}")))?;
    let dict = data.remove(&Profile::Default).unwrap_or_default();
    if let Some(unknown) = dict.keys().find(|k| Setting::by_key(k).is_none()) {
        return Err(ConfigError(format!("{shown}: unknown setting `{unknown}` (see --help for the keys)")));
    }
    Ok(Layer { name: shown.to_string(), dict })
}

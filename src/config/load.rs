//! Reading the file and applying the environment's overrides.

use super::sections::default_telegram_api;
use super::{invalid, ChatId, Config, ConfigError, EmailConfig, TelegramConfig};
use crate::env;
use std::path::Path;

impl Config {
    /// Reads `path` (when given), applies environment overrides, and checks every value.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        // One line, without toml's source excerpt: the line may hold a secret.
        toml::from_str(text).map_err(|e| crate::redact::toml_error(text, &e))
    }

    /// `PORT`, `DATABASE_URL`, `PROXYVISOR_ADMIN_TOKEN`, `TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_ID`,
    /// `SMTP_URL` win over the file.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Some(port) = env::parsed::<u16>("PORT").map_err(|m| invalid("PORT", m))? {
            let host = self
                .server
                .bind
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or_else(|| "0.0.0.0".into());
            self.server.bind = format!("{host}:{port}");
        }
        if let Some(url) = env::string("DATABASE_URL") {
            self.database.url = url;
        }
        if let Some(token) = env::string("PROXYVISOR_ADMIN_TOKEN") {
            self.server.admin_token = Some(token.into());
        }
        let bot = env::string("TELEGRAM_BOT_TOKEN");
        let chat = env::string("TELEGRAM_CHAT_ID");
        if bot.is_some() || chat.is_some() {
            let tg = self.alerts.telegram.get_or_insert_with(|| TelegramConfig {
                bot_token: None,
                chat_id: None,
                api_base: default_telegram_api(),
            });
            if let Some(bot) = bot {
                tg.bot_token = Some(bot.into());
            }
            if let Some(chat) = chat {
                tg.chat_id = Some(ChatId::Text(chat));
            }
        }
        if let Some(smtp) = env::string("SMTP_URL") {
            let email = self.alerts.email.get_or_insert_with(|| EmailConfig {
                smtp_url: None,
                from: None,
                to: Vec::new(),
            });
            email.smtp_url = Some(smtp.into());
        }
        Ok(())
    }
}

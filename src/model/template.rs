//! A service's task template (image, command, args, env, mounts, ...) as a value that can be
//! compared, hashed, journaled and sent back. Templates are normalized through bollard's model so
//! one read from bollard and one from the engine's raw JSON compare equal, and `ForceUpdate` is
//! left out: a restart does not make a template different.

use bollard::models::TaskSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template(Value);

impl Template {
    pub fn from_task_spec(spec: &TaskSpec) -> Self {
        let mut value = serde_json::to_value(spec).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("ForceUpdate");
        }
        Self(value)
    }

    /// From the engine's raw JSON of a `TaskTemplate`.
    pub fn from_raw(raw: &Value) -> Option<Self> {
        let spec: TaskSpec = serde_json::from_value(raw.clone()).ok()?;
        Some(Self::from_task_spec(&spec))
    }

    /// The template as bollard's model, with `force_update` set as given.
    pub fn to_task_spec(&self, force_update: u64) -> Result<TaskSpec, String> {
        let mut spec: TaskSpec =
            serde_json::from_value(self.0.clone()).map_err(|e| e.to_string())?;
        spec.force_update = Some(force_update);
        Ok(spec)
    }

    /// A stable 64-bit FNV-1a hash of the canonical JSON (keys sorted): the template's identity
    /// in journal lines and answers.
    pub fn hash(&self) -> u64 {
        let text = self.0.to_string();
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// The image, for messages.
    pub fn image(&self) -> &str {
        self.0["ContainerSpec"]["Image"].as_str().unwrap_or("?")
    }
}

/// How templates are named in answers and journal lines.
pub fn short(hash: u64) -> String {
    format!("{:08x}", hash >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::TaskSpecContainerSpec;

    fn spec(image: &str, force: u64) -> TaskSpec {
        TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.into()),
                ..Default::default()
            }),
            force_update: Some(force),
            ..Default::default()
        }
    }

    #[test]
    fn force_update_does_not_change_identity() {
        let a = Template::from_task_spec(&spec("web:1", 0));
        let b = Template::from_task_spec(&spec("web:1", 7));
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
    }

    #[test]
    fn another_image_is_another_template() {
        let a = Template::from_task_spec(&spec("web:1", 0));
        let b = Template::from_task_spec(&spec("web:2", 0));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(b.image(), "web:2");
    }

    #[test]
    fn raw_engine_json_normalizes_to_the_same_template() {
        let raw = serde_json::json!({
            "ContainerSpec": {"Image": "web:1", "Unknown": true},
            "ForceUpdate": 3
        });
        let from_raw = Template::from_raw(&raw).unwrap();
        assert_eq!(
            from_raw.hash(),
            Template::from_task_spec(&spec("web:1", 0)).hash()
        );
        assert_eq!(from_raw.to_task_spec(5).unwrap().force_update, Some(5));
    }
}

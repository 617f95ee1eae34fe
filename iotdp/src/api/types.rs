//! `/types`: device types and their derived metrics (the same checks as `iotdp types put`).
//! Types are fleet-wide, so only an admin whose scope is the whole fleet changes one.

use serde_json::{Value, json};

use super::QueryApi;
use super::access::Access;
use super::problem::{Problem, ProblemCode, registry_problem};
use crate::devices::ports::DeviceTypes;
use crate::devices::types::TypeDefinition;

impl<R, T, A, U, S, K> QueryApi<R, T, A, U, S, K>
where
    R: DeviceTypes,
{
    pub(super) async fn list_types(&self) -> Result<Value, Problem> {
        let types = self.registry.list_types().await.map_err(registry_problem)?;
        Ok(json!({ "types": types }))
    }

    pub(super) async fn get_type(&self, name: &str) -> Result<Value, Problem> {
        let found = self
            .registry
            .get_types(&[name])
            .await
            .map_err(registry_problem)?;
        let definition = found.into_iter().next().ok_or_else(|| {
            Problem::not_found(
                ProblemCode::UnknownDeviceType,
                format!("no device type '{name}': PUT /types/{name} defines it"),
            )
        })?;
        Ok(json!({ "type": definition }))
    }

    pub(super) async fn put_type(
        &self,
        name: &str,
        body: &[u8],
        access: &Access,
    ) -> Result<Value, Problem> {
        let definition: TypeDefinition = serde_json::from_slice(body).map_err(|e| Problem {
            status: 400,
            code: ProblemCode::InvalidDeviceType,
            detail: format!("not a device type definition (openapi.yaml's DeviceType): {e}"),
        })?;
        if definition.device_type != name {
            return Err(Problem::unprocessable(
                ProblemCode::InvalidDeviceType,
                format!(
                    "the body's device_type '{}' differs from the path's '{name}'",
                    definition.device_type
                ),
            ));
        }
        if !access.fleet {
            return Err(Problem {
                status: 403,
                code: ProblemCode::OutsideScope,
                detail: "a device type applies to every device of that type, across the fleet: \
                         only an admin whose scope is the whole fleet changes one"
                    .into(),
            });
        }
        // What the schema cannot say: names the expressions read, divisors of zero, names
        // already taken, syntax inside an expression.
        definition
            .compile()
            .map_err(|e| Problem::unprocessable(ProblemCode::InvalidDeviceType, e.to_string()))?;
        let version = self
            .registry
            .put_type(&definition)
            .await
            .map_err(registry_problem)?
            .ok_or_else(|| Problem {
                status: 409,
                code: ProblemCode::StaleVersion,
                detail: format!(
                    "device type '{name}' was changed by another put at the same time: GET it and put again"
                ),
            })?;
        Ok(json!({ "type": TypeDefinition { version, ..definition } }))
    }
}

//! IoT Core control-plane adapter for [`ThingProvisioner`]: things, certificates, policies.

use aws_sdk_iot::Client;
use aws_sdk_iot::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iot::types::{AttributePayload, CertificateStatus};

use crate::devices::ports::{IotError, IssuedCertificate, ThingProvisioner};

fn iot_error<E, R>(what: &str, e: SdkError<E, R>) -> IotError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    IotError(format!("{what}: {}", DisplayErrorContext(e)))
}

fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == code)
}

pub struct IotThings {
    client: Client,
}

impl IotThings {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ThingProvisioner for IotThings {
    async fn create_thing(&self, thing_name: &str, device_type: &str) -> Result<(), IotError> {
        let attributes = AttributePayload::builder()
            .attributes("device_type", device_type)
            .build();
        match self
            .client
            .create_thing()
            .thing_name(thing_name)
            .attribute_payload(attributes)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, "ResourceAlreadyExistsException") => Ok(()),
            Err(e) => Err(iot_error(&format!("CreateThing {thing_name}"), e)),
        }
    }

    async fn issue_certificate(&self) -> Result<IssuedCertificate, IotError> {
        let out = self
            .client
            .create_keys_and_certificate()
            .set_as_active(true)
            .send()
            .await
            .map_err(|e| iot_error("CreateKeysAndCertificate", e))?;
        let missing = |what: &str| IotError(format!("CreateKeysAndCertificate returned no {what}"));
        Ok(IssuedCertificate {
            certificate_arn: out
                .certificate_arn()
                .ok_or_else(|| missing("certificateArn"))?
                .to_owned(),
            certificate_id: out
                .certificate_id()
                .ok_or_else(|| missing("certificateId"))?
                .to_owned(),
            certificate_pem: out
                .certificate_pem()
                .ok_or_else(|| missing("certificatePem"))?
                .to_owned(),
            private_key_pem: out
                .key_pair()
                .and_then(|k| k.private_key())
                .ok_or_else(|| missing("private key"))?
                .to_owned(),
        })
    }

    async fn attach_certificate(
        &self,
        thing_name: &str,
        certificate_arn: &str,
        policy_name: &str,
    ) -> Result<(), IotError> {
        self.client
            .attach_policy()
            .policy_name(policy_name)
            .target(certificate_arn)
            .send()
            .await
            .map_err(|e| {
                iot_error(
                    &format!(
                        "AttachPolicy {policy_name} (is it the stack's DevicePolicyName output?)"
                    ),
                    e,
                )
            })?;
        self.client
            .attach_thing_principal()
            .thing_name(thing_name)
            .principal(certificate_arn)
            .send()
            .await
            .map_err(|e| iot_error(&format!("AttachThingPrincipal {thing_name}"), e))?;
        Ok(())
    }

    async fn data_endpoint(&self) -> Result<String, IotError> {
        let out = self
            .client
            .describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .map_err(|e| iot_error("DescribeEndpoint iot:Data-ATS", e))?;
        out.endpoint_address()
            .map(str::to_owned)
            .ok_or_else(|| IotError("DescribeEndpoint returned no address".into()))
    }

    async fn retire_thing(
        &self,
        thing_name: &str,
        policy_name: &str,
    ) -> Result<Vec<String>, IotError> {
        let principals = match self
            .client
            .list_thing_principals()
            .thing_name(thing_name)
            .send()
            .await
        {
            Ok(out) => out.principals().to_vec(),
            // Already gone (a re-run after a partial decommission): nothing left to retire.
            Err(e) if is_code(&e, "ResourceNotFoundException") => return Ok(vec![]),
            Err(e) => return Err(iot_error(&format!("ListThingPrincipals {thing_name}"), e)),
        };
        for arn in &principals {
            let certificate_id = arn.rsplit('/').next().unwrap_or_default();
            self.client
                .update_certificate()
                .certificate_id(certificate_id)
                .new_status(CertificateStatus::Inactive)
                .send()
                .await
                .map_err(|e| {
                    iot_error(&format!("UpdateCertificate {certificate_id} INACTIVE"), e)
                })?;
            self.client
                .detach_thing_principal()
                .thing_name(thing_name)
                .principal(arn)
                .send()
                .await
                .map_err(|e| iot_error(&format!("DetachThingPrincipal {thing_name}"), e))?;
            match self
                .client
                .detach_policy()
                .policy_name(policy_name)
                .target(arn)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if is_code(&e, "ResourceNotFoundException") => {}
                Err(e) => return Err(iot_error(&format!("DetachPolicy {policy_name}"), e)),
            }
        }
        self.client
            .delete_thing()
            .thing_name(thing_name)
            .send()
            .await
            .map_err(|e| iot_error(&format!("DeleteThing {thing_name}"), e))?;
        Ok(principals)
    }
}

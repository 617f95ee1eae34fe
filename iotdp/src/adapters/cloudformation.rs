//! CloudFormation adapter for [`StackOutputSource`]: a deployed stack's outputs, so the CLI
//! finds every table, policy and store by the stack's name.

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::config::{StackLookupError, StackOutputSource, StackOutputs};

pub struct CloudFormationStacks {
    client: Client,
}

impl CloudFormationStacks {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl StackOutputSource for CloudFormationStacks {
    async fn outputs(&self, stack: &str) -> Result<StackOutputs, StackLookupError> {
        let described = match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(described) => described,
            // CloudFormation answers an unknown name with a ValidationError "... does not exist".
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.code() == Some("ValidationError")
                        && s.message().is_some_and(|m| m.contains("does not exist"))
                }) =>
            {
                return Err(StackLookupError::NotFound(stack.to_owned()));
            }
            Err(e) => {
                return Err(StackLookupError::Unavailable {
                    stack: stack.to_owned(),
                    message: DisplayErrorContext(e).to_string(),
                });
            }
        };
        let found = described
            .stacks()
            .first()
            .ok_or_else(|| StackLookupError::NotFound(stack.to_owned()))?;
        Ok(found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect())
    }
}

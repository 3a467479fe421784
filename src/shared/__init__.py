"""Code shared by every function (deployed as the Lambda layer): configuration, HTTP plumbing,
authentication, row-level security, audit, DynamoDB access, the query cache and events."""

"""The local AWS side of `crm serve`: moto's server application (DynamoDB, EventBridge, SQS,
Cognito) over HTTP, run by `crm.local_aws` in a child process and provisioned from template.yaml, a Redis
of the stack's own when none is configured (ElastiCache's stand-in), and the environment the
functions get."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from crm.template import QueueSpec, RuleSpec, TableSpec, Template, UserPoolSpec

LOCAL_STAGE = "local"
DEFAULT_AWS_PORT = 8000
DEFAULT_API_PORT = 3000
# Only for the local stack: the functions in AWS read their secret from Secrets Manager.
LOCAL_JWT_SECRET = "local-development-secret-not-for-aws-0123456789"  # noqa: S105  # nosec B105  # local stack only
DEFAULT_LOCAL_ORIGINS = (
    "http://localhost:5173,http://127.0.0.1:5173,http://localhost:8080,http://127.0.0.1:8080,"
    "http://localhost:3001,http://127.0.0.1:3001"
)
# A local queue keeps a received message invisible for at most this many seconds (the template's
# stats events queue says 90). A record the consumer failed on comes back when it passes: with the
# template's value a local retry would take 90 s, and meanwhile every mutating request would wait
# for it (`QueuePoller.wait_until_idle`, up to 15 s). Only the delay is shorter: redelivery, the
# receive count and the move to the dead-letter queue after maxReceiveCount receipts are the
# template's. See docs/decisions.md, "Local runner".
LOCAL_MAX_VISIBILITY_TIMEOUT = 2
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # nosec B105  # moto accepts any


def local_template(environ: Mapping[str, str] = os.environ) -> Template:
    return Template.load(
        {
            "Stage": environ.get("STAGE", LOCAL_STAGE),
            "CorsAllowOrigins": environ.get("CORS_ALLOW_ORIGINS", DEFAULT_LOCAL_ORIGINS),
        }
    )


def local_token(
    user_id: str,
    ttl_seconds: int | None = None,
    environ: Mapping[str, str] = os.environ,
    aws_endpoint: str | None = None,
) -> str:
    """A token for `user_id` as the local stack accepts it (`crm token`): a demo staff user signs
    in to the staff user pool on the local AWS endpoint (`aws_endpoint`, else the recorded
    `crm serve`'s, else the default port) with its documented password and gets the pool's ID
    token (its lifetime is the pool's: `ttl_seconds` is refused); any other user id gets a vendor
    credential for `ttl_seconds` (default an hour), signed with JWT_SECRET, JWT_ISSUER and
    JWT_AUDIENCE when set, else the local secret and the template's defaults."""
    from crm.seed import DEMO_PASSWORDS, DemoUser

    template = local_template(environ)
    if user_id in DEMO_PASSWORDS:
        if ttl_seconds is not None:
            raise SignInRefused(
                f"{user_id} signs in to the staff user pool, whose ID tokens live 1 hour: "
                "--ttl applies to vendor credentials"
            )
        pool = find_user_pool(template, aws_endpoint or recorded_endpoint(environ))
        return sign_in(pool, DemoUser(user_id, "", "").email, DEMO_PASSWORDS[user_id])
    from shared.auth import TokenSettings, issue_token

    settings = TokenSettings(
        secret=environ.get("JWT_SECRET") or LOCAL_JWT_SECRET,
        issuer=environ.get("JWT_ISSUER") or template.parameters["JwtIssuer"],
        audience=environ.get("JWT_AUDIENCE") or template.parameters["JwtAudience"],
    )
    return issue_token(settings, user_id, ttl_seconds=ttl_seconds or 3600)


def recorded_endpoint(environ: Mapping[str, str] = os.environ) -> str:
    """The local AWS endpoint of the running `crm serve` (crm.targets), else the default one."""
    from crm.targets import read_record

    record = read_record(environ)
    return record.aws_endpoint if record else f"http://127.0.0.1:{DEFAULT_AWS_PORT}"


def function_environment(template: Template, aws_endpoint: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What a function sees: the template's variables, resolved for the local stack, with the
    operator's own settings (JWT_SECRET, REDIS_URL, CORS_ALLOW_ORIGINS, ...) taking precedence."""
    env = template.environment()
    env.pop("JWT_SECRET_ARN", None)  # the local stack signs with JWT_SECRET instead
    env.update(
        {
            "JWT_SECRET": LOCAL_JWT_SECRET,
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            # Postbacks may go to a receiver on this machine (http://127.0.0.1); deployed, only
            # https to public addresses.
            "POSTBACK_ALLOW_LOOPBACK": "true",
            **FAKE_CREDENTIALS,
        }
    )
    for name in (
        "JWT_SECRET",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "REDIS_URL",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_METRICS_DISABLED",  # "false" prints each invocation's EMF metrics to stdout
        "BUSINESS_TIMEZONE",
        "USER_CACHE_SECONDS",
        "CACHE_TTL_SECONDS",
        "STATS_FRESHNESS_SECONDS",
        "OUTBOX_GRACE_SECONDS",
        "OUTBOX_RETRY_BASE_SECONDS",
        "OUTBOX_RETRY_MAX_SECONDS",
        "POSTBACK_RETRY_SECONDS",
        "POSTBACK_ALLOW_LOOPBACK",
    ):
        if environ.get(name):
            env[name] = environ[name]
    return env


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) != 0


@dataclass
class MotoServer:
    """The local AWS endpoint in a child process (`python -m crm.local_aws`): moto's server
    application, one HTTP endpoint for every AWS service used, applying DynamoDB requests one at a
    time (as DynamoDB applies each write atomically) while other services' requests run
    concurrently."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_AWS_PORT
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        if not port_is_free(self.host, self.port):
            raise RuntimeError(
                f"port {self.port} is already in use; choose another with --aws-port "
                "(the local DynamoDB endpoint)"
            )
        self.process = start_listener(
            [sys.executable, "-m", "crm.local_aws", "--host", self.host, "--port", str(self.port)],
            self.host,
            self.port,
            "moto server",
            timeout,
        )

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None


def start_listener(
    command: list[str], host: str, port: int, name: str, timeout: float
) -> subprocess.Popen[bytes]:
    """Starts `command`, a server that listens on host:port, and returns once it does."""
    process = subprocess.Popen(  # nosec B603  # the stack's own fixed commands
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        if not port_is_free(host, port):
            return process
        time.sleep(0.02)
    stop_child(process)
    raise RuntimeError(f"{name} did not start on port {port} within {timeout:.0f}s")


def stop_child(process: subprocess.Popen[bytes] | None) -> None:
    """Terminates a child process this stack started, killing it if it does not stop."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalRedis:
    """A `redis-server` child process on a free loopback port, keeping nothing on disk: the query
    cache that every execution environment of every function shares, as deployed functions share
    ElastiCache. `crm serve` starts one when REDIS_URL is unset."""

    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed: `make run` installs it (Debian package "
                "redis-server), or set REDIS_URL to a Redis of your own"
            )
        self.port = self.port or free_port(self.host)
        self.process = start_listener(
            [executable, "--bind", self.host, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            self.host,
            self.port,
            "redis-server",
            timeout,
        )  # fmt: skip

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@functools.lru_cache(maxsize=4)
def _cognito(endpoint: str) -> Any:
    # A session of its own: `crm serve` creates the user pool in a thread while its main thread
    # makes clients, and boto3's default session is not safe to share for that. One client per
    # endpoint (a client is safe to share between threads): making one costs about 0.1 s.
    return boto3.session.Session().client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def create_table(client: Any, spec: TableSpec) -> None:
    request: dict[str, Any] = {
        "TableName": spec.name,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in spec.attributes.items()
        ],
        "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in spec.keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in index.keys],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    try:
        client.create_table(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise


def provision(
    template: Template, endpoint: str, max_visibility_timeout: int | None = LOCAL_MAX_VISIBILITY_TIMEOUT
) -> dict[str, str]:
    """Creates the template's tables, buses, queues (each with the redrive policy it states, its
    dead-letter queue first) and rules (targeting those queues, as the template's rules do).
    A queue's visibility timeout is the template's, at most `max_visibility_timeout` seconds
    (None: the template's as it is).
    Returns queue logical id -> queue URL."""
    dynamodb = _client("dynamodb", endpoint)
    for table in template.tables():
        create_table(dynamodb, table)
    events, sqs = _client("events", endpoint), _client("sqs", endpoint)
    # The queues first, then each bus right before its rules: a bus created again (after an
    # outage) takes events without rules for as short a time as the calls take.
    queues = create_queues(sqs, template.queues(), max_visibility_timeout)
    for bus in template.bus_names():
        try:
            events.create_event_bus(Name=bus)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
    for rule in template.rules():
        put_rule(events, rule, {logical_id: arn for logical_id, (_, arn) in queues.items()})
    return {logical_id: url for logical_id, (url, _) in queues.items()}


def create_queues(
    sqs: Any, specs: list[QueueSpec], max_visibility_timeout: int | None
) -> dict[str, tuple[str, str]]:
    """Creates every queue, a redrive target before the queue that names it.
    Returns logical id -> (URL, ARN)."""
    by_id = {spec.logical_id: spec for spec in specs}
    created: dict[str, tuple[str, str]] = {}

    def create(spec: QueueSpec) -> tuple[str, str]:
        if spec.logical_id not in created:
            timeout = spec.visibility_timeout
            if max_visibility_timeout is not None:
                timeout = min(timeout, max_visibility_timeout)
            attributes = {"VisibilityTimeout": str(timeout)}
            if spec.dead_letter_queue is not None:
                _, dead_letters = create(by_id[spec.dead_letter_queue])
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": dead_letters, "maxReceiveCount": spec.max_receive_count}
                )
            url = sqs.create_queue(QueueName=spec.name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            created[spec.logical_id] = (url, arn)
        return created[spec.logical_id]

    for spec in specs:
        create(spec)
    return created


def put_rule(events: Any, rule: RuleSpec, queue_arns: dict[str, str]) -> None:
    """The rule on its bus, with its targets: queues of the template, given by logical id."""
    events.put_rule(Name=rule.name, EventBusName=rule.bus_name, EventPattern=json.dumps(rule.pattern))
    targets: list[dict[str, Any]] = []
    for target in rule.targets:
        entry: dict[str, Any] = {"Id": target.id, "Arn": queue_arns[target.queue]}
        if target.dead_letter_queue is not None:
            entry["DeadLetterConfig"] = {"Arn": queue_arns[target.dead_letter_queue]}
        if target.retry_policy is not None:
            entry["RetryPolicy"] = target.retry_policy
        targets.append(entry)
    events.put_targets(Rule=rule.name, EventBusName=rule.bus_name, Targets=targets)


@dataclass(frozen=True)
class LocalUserPool:
    """The staff user pool as created on the local AWS endpoint. Its tokens name the issuer AWS
    would (`https://cognito-idp.<region>.amazonaws.com/<pool id>`, what moto signs into `iss`);
    its keys are served by the local endpoint instead, at `jwks_url`."""

    pool_id: str
    client_id: str
    endpoint: str
    region: str = "us-east-1"

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"

    def environment(self) -> dict[str, str]:
        """What the functions are told of the pool (the template's USER_POOL_* variables, and
        where the local endpoint publishes the pool's keys)."""
        return {
            "USER_POOL_ID": self.pool_id,
            "USER_POOL_CLIENT_ID": self.client_id,
            "USER_POOL_ISSUER": self.issuer,
            "USER_POOL_JWKS_URL": self.jwks_url,
        }


@dataclass(frozen=True)
class StaffAccount:
    """A pool user to create: signs in with `email` and `password` (permanent), in `group`, and
    names the user record `user_id` (its `custom:user_id`)."""

    email: str
    password: str
    group: str
    user_id: str


def provision_user_pool(template: Template, endpoint: str) -> LocalUserPool:
    """Creates the template's user pool, its app client and its groups, each with the template's
    properties (CreateUserPool, CreateUserPoolClient and CreateGroup take them as they are
    written). The pool has one client, the dashboard's."""
    spec = template.user_pool()
    cognito = _cognito(endpoint)
    pool_id = cognito.create_user_pool(**user_pool_request(spec))["UserPool"]["Id"]
    if "EnabledMfas" in spec.properties:
        # CloudFormation's EnabledMfas is the API's MFA configuration, set apart from the pool.
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool_id,
            MfaConfiguration=spec.properties.get("MfaConfiguration", "OFF"),
            SoftwareTokenMfaConfiguration={"Enabled": "SOFTWARE_TOKEN_MFA" in spec.properties["EnabledMfas"]},
        )
    (client_properties,) = spec.clients.values()
    client_id = cognito.create_user_pool_client(UserPoolId=pool_id, **client_properties)["UserPoolClient"][
        "ClientId"
    ]
    for group in spec.groups.values():
        cognito.create_group(UserPoolId=pool_id, **group)
    return LocalUserPool(pool_id=pool_id, client_id=client_id, endpoint=endpoint)


class SignInRefused(RuntimeError):
    """The pool refused a sign-in (no such pool, wrong password, a challenge to answer first)."""


def find_user_pool(template: Template, endpoint: str) -> LocalUserPool:
    """The template's user pool as `crm serve` created it on `endpoint`, found by its name."""
    name = template.user_pool().name
    cognito = _cognito(endpoint)
    try:
        pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    except (BotoCoreError, ClientError) as exc:
        raise SignInRefused(f"no local AWS endpoint at {endpoint}: start it with `make run`") from exc
    pool_id = next((pool["Id"] for pool in pools if pool["Name"] == name), None)
    if pool_id is None:
        raise SignInRefused(f"no user pool {name} at {endpoint}: is `crm serve` running there?")
    (client,) = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=1)["UserPoolClients"]
    return LocalUserPool(pool_id=pool_id, client_id=client["ClientId"], endpoint=endpoint)


def sign_in(pool: LocalUserPool, email: str, password: str) -> str:
    """The ID token the pool issues for `email` and `password` (USER_PASSWORD_AUTH, as the
    dashboard signs in)."""
    try:
        answer = _cognito(pool.endpoint).initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except ClientError as exc:
        raise SignInRefused(f"{email} cannot sign in: {exc.response['Error'].get('Message', exc)}") from exc
    if "AuthenticationResult" not in answer:
        raise SignInRefused(f"{email} must first answer the {answer.get('ChallengeName')} challenge")
    return str(answer["AuthenticationResult"]["IdToken"])


def user_pool_request(spec: UserPoolSpec) -> dict[str, Any]:
    """CreateUserPool's parameters for the template's pool."""
    request = {
        name: value for name, value in spec.properties.items() if name not in ("UserPoolName", "EnabledMfas")
    }
    return {"PoolName": spec.name, **request}


def add_staff_accounts(pool: LocalUserPool, accounts: list[StaffAccount]) -> dict[str, str]:
    """Creates each account in the pool with its email verified, no invitation sent and its
    password permanent (no new-password challenge at first sign-in), in its group.
    Returns email -> the pool user's `sub`."""
    cognito = _cognito(pool.endpoint)
    subs = {}
    for account in accounts:
        user = cognito.admin_create_user(
            UserPoolId=pool.pool_id,
            Username=account.email,
            UserAttributes=[
                {"Name": "email", "Value": account.email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:user_id", "Value": account.user_id},
            ],
            MessageAction="SUPPRESS",
        )["User"]
        cognito.admin_set_user_password(
            UserPoolId=pool.pool_id, Username=account.email, Password=account.password, Permanent=True
        )
        cognito.admin_add_user_to_group(
            UserPoolId=pool.pool_id, Username=account.email, GroupName=account.group
        )
        subs[account.email] = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return subs

"""Login bodies for auth methods that need client-side work (AWS IAM request signing).

The HTTP login itself goes through NodeClient.login (PUT auth/<mount>/login); only the
SigV4 signing of the sts:GetCallerIdentity request uses hvac's helpers.
"""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any

from vaultops.errors import ConfigError


def aws_iam_login_body(*, role: str, header_value: str | None = None, region: str | None = None,
                       sts_endpoint: str | None = None) -> dict[str, Any]:
    """Body for PUT auth/aws/login: a signed GetCallerIdentity request Vault replays to STS.

    Credentials come from the boto3 chain (environment, profile, instance/task role).
    """
    import botocore.session
    from hvac import aws_utils

    creds = botocore.session.get_session().get_credentials()
    if creds is None:
        raise ConfigError("AWS IAM auth: no AWS credentials found",
                          hint="run on an instance/task with a role, or set AWS_PROFILE / AWS_ACCESS_KEY_ID")
    frozen = creds.get_frozen_credentials()
    request = aws_utils.generate_sigv4_auth_request(header_value=header_value)
    if sts_endpoint:  # a regional or private STS endpoint the Vault role is configured for
        from urllib.parse import urlsplit
        request.url = sts_endpoint.rstrip("/") + "/"
        request.headers["Host"] = urlsplit(sts_endpoint).netloc
    aws_utils.SigV4Auth(frozen.access_key, frozen.secret_key, frozen.token,
                        region or "us-east-1").add_auth(request)
    headers = json.dumps({k: [request.headers[k]] for k in request.headers})
    return {
        "iam_http_request_method": request.method,
        "iam_request_url": b64encode(request.url.encode()).decode(),
        "iam_request_headers": b64encode(headers.encode()).decode(),
        "iam_request_body": b64encode(request.body.encode()).decode(),
        "role": role,
    }

"""Login bodies for auth methods that need client-side work (AWS IAM request signing).

The HTTP login itself goes through NodeClient.login (PUT auth/<mount>/login); only the SigV4
signing of the sts:GetCallerIdentity request Vault replays is done here, by botocore (already
here for S3 and the credential chain): hvac's helper did the same and was vaultops' only use of hvac.
"""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any
from urllib.parse import urlsplit

from vaultops.errors import ConfigError

STS = "https://sts.amazonaws.com/"
GET_CALLER_IDENTITY = "Action=GetCallerIdentity&Version=2011-06-15"


def aws_iam_login_body(*, role: str, header_value: str | None = None, region: str | None = None,
                       sts_endpoint: str | None = None) -> dict[str, Any]:
    """Body for PUT auth/aws/login: a signed GetCallerIdentity request Vault replays to STS.

    Credentials come from the boto3 chain (environment, profile, instance/task role).
    """
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = botocore.session.get_session().get_credentials()
    if creds is None:
        raise ConfigError("AWS IAM auth: no AWS credentials found",
                          hint="run on an instance/task with a role, or set AWS_PROFILE / AWS_ACCESS_KEY_ID")
    # a regional or private STS endpoint the Vault role is configured for, else the global one
    url = sts_endpoint.rstrip("/") + "/" if sts_endpoint else STS
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Host": urlsplit(url).netloc}
    if header_value:
        headers["X-Vault-AWS-IAM-Server-ID"] = header_value
    request = AWSRequest(method="POST", url=url, data=GET_CALLER_IDENTITY, headers=headers)
    SigV4Auth(creds.get_frozen_credentials(), "sts", region or "us-east-1").add_auth(request)
    signed = json.dumps({k: [v] for k, v in request.headers.items()})
    return {
        "iam_http_request_method": request.method,
        "iam_request_url": b64encode(url.encode()).decode(),
        "iam_request_headers": b64encode(signed.encode()).decode(),
        "iam_request_body": b64encode(GET_CALLER_IDENTITY.encode()).decode(),
        "role": role,
    }

"""botocore's own SigV4 signer at a chosen time: the reference the tests hold lib/aws_sigv4 to."""
import datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def botocore_sign(method, url, headers, body, access_key, secret_key, token,
                  region, service, amz_date, params=None):
    """Return (Authorization, canonical request, canonical query) as botocore computes them
    for this request signed at amz_date ("20150830T123600Z")."""
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body or b"",
                     params=[tuple(p) for p in params or ()])
    seen = {}

    class Signer(SigV4Auth):
        def canonical_request(self, request):
            seen["creq"] = super().canonical_request(request)
            seen["query"] = self.canonical_query_string(request)
            return seen["creq"]

    signer = Signer(Credentials(access_key, secret_key, token), service, region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(req)
    return req.headers["Authorization"], seen["creq"], seen["query"]

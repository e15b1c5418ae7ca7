"""OAuth 2.0 token endpoint: the JWT-bearer grant of service-account keys (google-auth, gcloud)."""

from __future__ import annotations

import time

from aiohttp import web

from .. import keys
from ..routing import Ctx, Router, json_response


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return json_response({"error": error, "error_description": description}, status)


async def token(ctx: Ctx) -> web.Response:
    form = ctx.body if isinstance(ctx.body, dict) else {}
    grant = form.get("grant_type", "")
    if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        if grant == "refresh_token":
            return _oauth_error("invalid_grant", "Bad Request")
        return _oauth_error("unsupported_grant_type", "Invalid grant_type: " + grant)
    assertion = form.get("assertion", "")
    try:
        header, claims, signing_input, sig = keys.jwt_parts(assertion)
    except keys.JwtError:
        return _oauth_error("invalid_grant", "Invalid JWT: Failed audience check. The expected audience is "
                            "https://oauth2.googleapis.com/token.")
    if header.get("alg") != "RS256":
        return _oauth_error("invalid_grant", "Invalid JWT Signature.")
    iss = claims.get("iss", "")
    data = ctx.data
    sa = data["service_accounts"].get(iss)
    if sa is None or sa.get("deleted"):
        return _oauth_error("invalid_grant", "Invalid grant: account not found")
    if sa.get("disabled"):
        return _oauth_error("invalid_grant", "Invalid grant: account disabled")
    candidates = []
    kid = header.get("kid")
    for key_id, rec in data["keys"].items():
        if rec["sa"] != iss or rec.get("deleted") or not rec.get("public_pem"):
            continue
        if kid and key_id != kid:
            continue
        candidates.append(rec)
    if not any(keys.verify_rs256(signing_input, sig, rec["public_pem"]) for rec in candidates):
        return _oauth_error("invalid_grant", "Invalid JWT Signature.")
    now = time.time()
    iat, exp = claims.get("iat", 0), claims.get("exp", 0)
    if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600 + 60:
        return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                            "reasonable timeframe. Check your iat and exp values in the JWT claim.")
    if claims.get("target_audience"):
        payload = {"aud": claims["target_audience"], "azp": sa["uniqueId"], "email": iss, "email_verified": True,
                   "exp": int(now) + 3600, "iat": int(now), "iss": "https://accounts.google.com",
                   "sub": sa["uniqueId"]}
        return json_response({"id_token": keys.sign_rs256(payload, ctx.srv.signer_key, "sandbox-signer")})
    if not claims.get("scope"):
        return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    tok = ctx.srv.issue_token(iss, 3600, scopes=str(claims["scope"]).split())
    return json_response({"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})


def register(r: Router) -> None:
    r.add("POST", "/token", token, "oauth2", auth=False, mutating=False, check_service=False)
    r.add("POST", "/oauth2/v4/token", token, "oauth2", auth=False, mutating=False, check_service=False)

"""What the instance's own uWSGI options may do to a response after our app returns it.

uWSGI can keep or rewrite a response behind the app's back: ``cachestore``
(and ``memcachedstore``/``redisstore``) store any ``200`` body whatever its
headers say, and the ``cache`` action serves it back without them;
transformations (``gzip``, ``chunked``, ``template``...) buffer and rewrite the
body; ``delheader``/``del-header`` can drop ``Content-Encoding`` or ``Vary``.
Any of these turns a precompressed variant into bytes a client did not ask for,
or encoded bytes without ``Content-Encoding``.

Contract:

* :func:`response_rewriter` takes the instance's options as uWSGI resolved
  them (``(key, value)`` pairs, in order, from :func:`.options.resolved_options`:
  ini, yaml, xml, json, environment and command line alike), and returns a description of the first option
  that may store, transform or strip the headers of a response, or None when
  none can. Route actions are judged by name against :data:`SAFE_ACTIONS`, the
  actions known to leave a response's body and encoding headers alone; any
  other action, including one we do not know, counts as rewriting (the safe
  mistake is to lose an optimisation, never to send wrong bytes). Every route
  family (``route``, ``route-if``, ``route-run``, ``response-route``,
  ``final-route``, ``error-route``... and their ``-host``/``-uri``/``-qs``...
  forms) is looked at, whatever its condition or label.
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

#: Route actions that neither store nor transform a response, nor touch its
#: encoding headers (from uWSGI 2.0's core and router plugins).
SAFE_ACTIONS = frozenset("""
    setmodifier1 setmodifier2 setapp setscriptname setpathinfo fixpathinfo seturi setmethod setuser
    sethome setfile setdocroot setremoteaddr setscheme setprocname addvar chdir
    continue last break return break-with-status goto log logvar donotlog donotoffload harakiri
    signal alarm send send-crnl addheader
    redirect redirect-301 redirect-302 redirect-permanent rewrite rewrite-last
    cache cache-continue cachevar cacheset cacheinc cachedec cachemul cachediv
    memcached memcached-continue redis redis-continue
    metricinc metricdec metricmul metricdiv metricset
    basicauth basicauth-next ldapauth ldapauth-next radius radius-next spnego spnego-next access
    static static-next file file-next fastfile fastfile-next sendfile sendfile-next
    http httpdumb httpconnect proxyhttp proxyhttpconnect uwsgi proxyuwsgi
    hash expires rpc rpcblob rpcnext rpcraw rpcret rpcvar call cgi cgihelper xmldir gridfs symcall
    + - * /
""".split())

#: Actions that remove response headers; safe unless they name one of ours below.
HEADER_REMOVING_ACTIONS = frozenset(("delheader", "remheader"))
#: Response headers whose loss makes an encoded variant wrong for some client.
ENCODING_HEADERS = ("content-encoding", "vary")
#: uWSGI options that remove a response header by name.
HEADER_REMOVING_OPTIONS = frozenset(("del-header", "remove-header", "pull-header"))

ROUTE_PREFIXES = ("route", "response-route", "final-route", "error-route")
#: Route options whose value is the action alone (no subject or condition first).
ACTION_ONLY = frozenset(("route-run", "response-route-run", "final-route-run", "error-route-run"))
LABEL_OPTIONS = frozenset(("route-label", "response-route-label", "final-route-label", "error-route-label"))


def is_route_option(key: str) -> bool:
    return any(key == prefix or key.startswith(prefix + "-") for prefix in ROUTE_PREFIXES)


def route_action(key: str, value: str) -> Tuple[str, str]:
    """``(action name, action arguments)`` of a route option's value.

    ``route = REGEX ACTION:ARGS``, ``route-if = COND:ARGS ACTION:ARGS``: uWSGI
    splits the subject or condition off at the first space; ``route-run =
    ACTION:ARGS`` is the action alone.
    """
    text = value.strip()
    if key not in ACTION_ONLY:
        _, _, text = text.partition(" ")
        text = text.strip()
    name, _, args = text.partition(":")
    return name.strip(), args


def _names_encoding_header(text: str) -> bool:
    return text.strip().lower() in ENCODING_HEADERS


def rewrites_responses(key: str, value: str) -> bool:
    """True if option ``key = value`` may store, transform or strip the
    encoding headers of a response."""
    if key in HEADER_REMOVING_OPTIONS:
        return _names_encoding_header(value)
    if not is_route_option(key) or key in LABEL_OPTIONS:
        return False
    name, args = route_action(key, value)
    if name in HEADER_REMOVING_ACTIONS:
        return _names_encoding_header(args)
    return name not in SAFE_ACTIONS


def response_rewriter(options: Iterable[Tuple[str, str]]) -> Optional[str]:
    """``"key = value"`` of the first option that may rewrite a response, or None."""
    for key, value in options:
        if rewrites_responses(key, value):
            return f"{key} = {value}"
    return None


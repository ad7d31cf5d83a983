"""routing: which uWSGI options may store or rewrite our responses (pure)."""

import pytest

from uwsgi_gluster.routing import response_rewriter, rewrites_responses, route_action


@pytest.mark.parametrize("key,value,expected", [
    ("route", ".* cachestore:key=${REQUEST_URI}", True),
    ("route", ".* cache-store:key=${REQUEST_URI},name=files", True),
    ("route", ".* cache:key=${REQUEST_URI},name=files", False),
    ("route-uri", "^/static/ memcachedstore:addr=127.0.0.1:11211,key=${REQUEST_URI}", True),
    ("route-if", "equal:${PATH_INFO};/x redisstore:key=${REQUEST_URI}", True),
    ("route-run", "gzip:", True),
    ("route-run", "chunked:", True),
    ("response-route", ".* tofile:filename=/tmp/x", True),
    ("final-route-status", "200 fixcl:", True),
    ("route-run", "setmodifier1:0", False),
    ("route", "^/(foo|bar)(/.*)$ setscriptname:/$1", False),
    ("route", "^/old redirect-permanent:/new", False),
    ("route-host", "^example.com$ addheader:X-Served-By: us", False),
    ("route", ".* last:", False),
    ("route", ".* break", False),
    ("route-label", "cachestore", False),  # a label is a name, not an action
    ("route", ".* delheader:Content-Encoding", True),
    ("response-route", ".* remheader:vary", True),
    ("route", ".* delheader:X-Powered-By", False),
    ("route", ".* clearheaders:200 OK", True),
    ("route", ".* somebodysplugin:whatever", True),  # unknown: assumed to rewrite
    ("del-header", "Content-Encoding", True),
    ("del-header", "Server", False),
    ("cache2", "name=files,items=100", False),
    ("http-socket", ":9090", False),
])
def test_rewrites_responses(key, value, expected):
    assert rewrites_responses(key, value) is expected


@pytest.mark.parametrize("key,value,action", [
    ("route", ".* cachestore:key=x", ("cachestore", "key=x")),
    ("route-if", "equal:${PATH_INFO};/x gzip:", ("gzip", "")),
    ("route-run", "setmodifier1:0", ("setmodifier1", "0")),
    ("route", ".* break", ("break", "")),
])
def test_route_action(key, value, action):
    assert route_action(key, value) == action


def test_response_rewriter_names_the_first_rewriting_option():
    options = [("route-run", "setmodifier1:0"),
               ("route", ".* cache:key=${REQUEST_URI}"),
               ("route", ".* cachestore:key=${REQUEST_URI}"),
               ("route-run", "gzip:")]
    assert response_rewriter(options) == "route = .* cachestore:key=${REQUEST_URI}"
    assert response_rewriter(options[:2]) is None


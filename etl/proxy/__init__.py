"""The team's entry point: nginx in front of the stack, with a login verifier beside it.

``python -m etl.proxy`` (in the proxy image: ``ufo-proxy``) checks ``PROXY_USERS``, finds or
makes the TLS certificate, renders nginx's configuration from
``docker-images/proxy/nginx.conf.template``, starts the login verifier on a Unix socket and runs
nginx as its child. The package uses the standard library and ``bcrypt`` only, and its modules
import each other relatively, so that the proxy image carries it alone (no ``etl`` around it).
"""

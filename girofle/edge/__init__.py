"""The edge: Traefik's TLS material, its dashboard credentials, routes and DNS records."""

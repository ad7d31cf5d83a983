"""uwsgi-gluster: serve GlusterFS volumes over HTTP from uWSGI through libgfapi."""

__version__ = "0.1.0"

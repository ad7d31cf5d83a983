# `uwsgi --build-plugin packaging/plugin` builds glusterfs_plugin.so for the uwsgi
# binary that runs it (Debian's uwsgi-core with uwsgi-src): the same C source
# that ./uwsgi embeds, with the distribution-plugin part switched on.
import os

NAME = 'glusterfs'
# GCC_LIST entries are relative to this directory, without ".c"
GCC_LIST = [os.path.join('..', '..', 'profiles', 'plugins', 'glusterfs')]
CFLAGS = ['-DUWSGI_GLUSTER_DSO']
LDFLAGS = []
LIBS = []
# written into the .so's "uwsgi" ELF section: uWSGI loads the python3 plugin
# before this one unless a plugin named python3 is already loaded
REQUIRES = ['python3']

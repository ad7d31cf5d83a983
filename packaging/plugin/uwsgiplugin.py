# `uwsgi --build-plugin packaging/plugin` builds glusterfs_plugin.so for the uwsgi
# binary that runs it (Debian's uwsgi-core with uwsgi-src): the same C source
# that ./uwsgi embeds, with the distribution-plugin part switched on.
import os

NAME = 'glusterfs'
# GCC_LIST entries are relative to this directory, without ".c"
GCC_LIST = [os.path.join('..', '..', 'profiles', 'plugins', 'glusterfs')]
CFLAGS = ['-DUWSGI_GLUSTER_DSO']
LDFLAGS = []
# the plugin calls only uWSGI's functions (uwsgi.h maps exit() to uwsgi_exit);
# -lc (kept despite gcc's --as-needed) records libc as a prerequisite, as Debian
# policy wants of a shared object
LIBS = ['-Wl,--no-as-needed', '-lc']
# written into the .so's "uwsgi" ELF section: uWSGI loads the python3 plugin
# before this one unless a plugin named python3 is already loaded
REQUIRES = ['python3']

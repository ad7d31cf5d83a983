/*
 * uwsgi-gluster: the uWSGI plugin named `glusterfs`.
 *
 * Serving is done in Python by uwsgi_gluster.plugin. This plugin gives that
 * Python side the native plugin's place in uWSGI. One source, two builds:
 *
 *  - embedded in ./uwsgi (profile glusterfs): the embedded configuration
 *    (profiles/glusterfs-embed.ini) loads the Python side and routes
 *    modifier1 27 to it; here the plugin only makes `plugins = glusterfs`
 *    (as in Debian users' inis) find a plugin of that name already embedded,
 *    so uWSGI never dlopen()s a native glusterfs_plugin.so built for another
 *    uWSGI (Debian's 2.0.21 plugin crashes 2.0.30 workers with SIGSEGV);
 *
 *  - glusterfs_plugin.so for a distribution's uwsgi (UWSGI_GLUSTER_DSO, built
 *    with `uwsgi --build-plugin packaging/plugin`): loading it also loads the
 *    python3 plugin (the ELF `requires` section, see uwsgiplugin.py), and
 *    adds the options that import uwsgi_gluster.plugin, so an ini written for
 *    the native plugin (`plugins = glusterfs`) runs unchanged.
 *
 * In both, the glusterfs-* options are known options: listed by --help,
 * accepted on the command line, kept in uWSGI's resolved option list. The
 * Python side reads every resolved value from that list
 * (uwsgi_gluster/options.py); nothing here acts on them. tests/test_options.py
 * checks that this list and uwsgi_gluster.config.OPTIONS name the same keys.
 * Requests with modifier1 27 (`http-socket-modifier1 = 27`, the native
 * plugin's id) are handed to the Python plugin (modifier1 0).
 */
#include <uwsgi.h>

extern struct uwsgi_server uwsgi;

#define GLUSTERFS_MODIFIER1 27
#define PYTHON_MODIFIER1 0
#define PYTHON_MODULE "uwsgi_gluster.plugin"

static struct uwsgi_string_list *glusterfs_mounts;
static int glusterfs_timeout;
static int glusterfs_connect_timeout;
static char *glusterfs_health;
static char *glusterfs_metrics;
static char *glusterfs_local_cache;
static char *glusterfs_local_cache_dir;
static char *glusterfs_local_cache_max_file;

static struct uwsgi_option glusterfs_options[] = {
	{"glusterfs-mount", required_argument, 0, "virtual mount the specified glusterfs volume in a uri (served by uwsgi_gluster.plugin)", uwsgi_opt_add_string_list, &glusterfs_mounts, 0},
	{"glusterfs-timeout", required_argument, 0, "timeout for glusterfs async mode (read by uwsgi_gluster.plugin)", uwsgi_opt_set_int, &glusterfs_timeout, 0},
	{"glusterfs-connect-timeout", required_argument, 0, "seconds a worker waits for a volfile server to answer (read by uwsgi_gluster.plugin)", uwsgi_opt_set_int, &glusterfs_connect_timeout, 0},
	{"glusterfs-health", required_argument, 0, "answer this path with 200 when every mount's volume is connected, 503 otherwise (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_health, 0},
	{"glusterfs-metrics", required_argument, 0, "answer this path with the glusterfs metrics in Prometheus text format (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_metrics, 0},
	{"glusterfs-local-cache", required_argument, 0, "byte budget of the instance's local content cache shared by all workers, e.g. 256M; 0 turns it off (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_local_cache, 0},
	{"glusterfs-local-cache-dir", required_argument, 0, "directory holding the local content cache (default /dev/shm; read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_local_cache_dir, 0},
	{"glusterfs-local-cache-max-file", required_argument, 0, "largest file the local content cache copies, e.g. 64M (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_local_cache_max_file, 0},
	UWSGI_END_OF_OPTIONS
};

/*
 * A modifier1 27 request goes to the Python plugin's request handler with its
 * modifier1 set to 0 first: uWSGI looks up the exception hooks and the
 * after_request hook (the request log) by the request's modifier1, so the
 * Python plugin's own are used. A Python exception is then logged and cleared
 * instead of staying pending into the response's close() (see README, "How
 * it works"). ./uwsgi does the same with remap-modifier + route-run.
 */
static int glusterfs_request(struct wsgi_request *wsgi_req) {
	wsgi_req->uh->modifier1 = PYTHON_MODIFIER1;
	return uwsgi.p[PYTHON_MODIFIER1]->request(wsgi_req);
}

/*
 * The glusterfs metrics (uwsgi_gluster/metrics.py) must be registered after
 * the Python plugin's init and before uWSGI allocates its metrics' shared
 * memory: that is exactly post_init. (Under pyuwsgi the launcher's asap hook
 * does it; declare_metrics() runs once per process.) The Python C API is
 * declared here, not included: the symbols come from the Python plugin's
 * libpython, already loaded. Not in the distribution plugin: with it, Debian's
 * service lifecycle test (tests/distro/test_deb_package.py) left uWSGI
 * processes running after /etc/init.d/uwsgi stop, as enable-threads did.
 */
#ifndef UWSGI_GLUSTER_DSO
extern int PyGILState_Ensure(void);
extern void PyGILState_Release(int);
extern int PyRun_SimpleString(const char *);

static void glusterfs_post_init(void) {
	int gil = PyGILState_Ensure();
	if (PyRun_SimpleString("import uwsgi_gluster.asap\nuwsgi_gluster.asap.declare_metrics(embedded=True)\n")) {
		uwsgi_log("[glusterfs] the glusterfs metrics could not be declared (see the Python error above)\n");
		exit(1);
	}
	PyGILState_Release(gil);
}
#endif

#ifdef UWSGI_GLUSTER_DSO
/* Options added as if the ini said them where it says `plugins = glusterfs`:
 * `import` and `mount` are lists no later line can drop. shared-import runs the start-up check of
 * every glusterfs setting in the master; disable-write-exception: a client
 * that goes away is logged by uWSGI's core, no Python exception is made. */
static void glusterfs_add_option(const char *key, const char *value) {
	add_exported_option(uwsgi_str((char *) key), uwsgi_str((char *) value), 0);
}

static void glusterfs_on_load(void) {
	/* The ELF `requires=python3` section made uWSGI load the python3 plugin
	 * before this one, unless a Python plugin was already loaded. */
	struct uwsgi_plugin *python = uwsgi_plugin_get("python");
	if (!python || python != uwsgi.p[PYTHON_MODIFIER1]) {
		uwsgi_log("[glusterfs] the python3 plugin (Debian package uwsgi-plugin-python3) could not be loaded: "
			  "uwsgi-gluster serves GlusterFS from Python\n");
		exit(1);
	}
	/* Plugins named by UWSGI_PLUGINS or by the executable's name (uwsgi_glusterfs)
	 * are loaded before uWSGI builds its option table, which add_exported_option
	 * looks keys up in: build it now (uWSGI rebuilds it right after anyway). */
	if (!uwsgi.options)
		build_options();
	/* profiles/glusterfs-embed.ini's lines, in its order, but remap-modifier and
	 * route-run = setmodifier1:0, which glusterfs_request does (tests/distro/
	 * test_plugin_source.py keeps the two lists the same). */
	glusterfs_add_option("shared-import", "uwsgi_gluster.check");
	glusterfs_add_option("import", PYTHON_MODULE);
	/* the apps by mountpoint; `mount` names the `/` app `/` in uWSGI's stats
	 * server (a `module` app is named after an empty mountpoint) */
	glusterfs_add_option("mount", "/=uwsgi_gluster.plugin:applications");
	/* uWSGI starts the status line with the request's protocol token as sent:
	 * requests whose protocol is not HTTP/N[.N] (or absent) are closed unanswered */
	glusterfs_add_option("route-if-not", "regexp:${SERVER_PROTOCOL};^(HTTP/[0-9](\\.[0-9])?)?$ break:");
	glusterfs_add_option("disable-write-exception", "1");
}
#endif

struct uwsgi_plugin glusterfs_plugin = {
	.name = "glusterfs",
	.modifier1 = GLUSTERFS_MODIFIER1,
	.options = glusterfs_options,
	.request = glusterfs_request,
#ifndef UWSGI_GLUSTER_DSO
	.post_init = glusterfs_post_init,
#endif
#ifdef UWSGI_GLUSTER_DSO
	.on_load = glusterfs_on_load,
#endif
};

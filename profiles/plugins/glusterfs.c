/*
 * uwsgi-gluster: the name `glusterfs` inside ./uwsgi (profile glusterfs).
 *
 * Serving is done in Python by uwsgi_gluster.plugin, which the embedded
 * configuration loads and routes modifier1 27 to (remap-modifier = 0:27).
 * This generic plugin serves nothing. It exists so that:
 *
 *  - `plugins = glusterfs` (as in Debian users' inis) finds a plugin of that
 *    name already embedded, so uWSGI never dlopen()s a native
 *    glusterfs_plugin.so built for another uWSGI (with Debian's in plugin-dir,
 *    the 2.0.21 plugin crashes 2.0.30 workers with SIGSEGV);
 *  - the glusterfs-* options are known options: listed by --help, accepted on
 *    the command line, kept in uWSGI's resolved option list. The Python side
 *    reads every resolved value from that list (uwsgi_gluster/options.py);
 *    nothing here acts on them. tests/test_options.py checks that this list
 *    and uwsgi_gluster.config.OPTIONS name the same keys.
 */
#include <uwsgi.h>

static struct uwsgi_string_list *glusterfs_mounts;
static int glusterfs_timeout;
static int glusterfs_connect_timeout;
static char *glusterfs_health;
static char *glusterfs_metrics;

static struct uwsgi_option glusterfs_options[] = {
	{"glusterfs-mount", required_argument, 0, "virtual mount the specified glusterfs volume in a uri (served by uwsgi_gluster.plugin)", uwsgi_opt_add_string_list, &glusterfs_mounts, 0},
	{"glusterfs-timeout", required_argument, 0, "timeout for glusterfs async mode (read by uwsgi_gluster.plugin)", uwsgi_opt_set_int, &glusterfs_timeout, 0},
	{"glusterfs-connect-timeout", required_argument, 0, "seconds a worker waits for a volfile server to answer (read by uwsgi_gluster.plugin)", uwsgi_opt_set_int, &glusterfs_connect_timeout, 0},
	{"glusterfs-health", required_argument, 0, "answer this path with 200 when every mount's volume is connected, 503 otherwise (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_health, 0},
	{"glusterfs-metrics", required_argument, 0, "answer this path with the glusterfs metrics in Prometheus text format (read by uwsgi_gluster.plugin)", uwsgi_opt_set_str, &glusterfs_metrics, 0},
	UWSGI_END_OF_OPTIONS
};

struct uwsgi_plugin glusterfs_plugin = {
	.name = "glusterfs",
	.options = glusterfs_options,
};

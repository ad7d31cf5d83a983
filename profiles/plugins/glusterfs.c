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
 *  - glusterfs_plugin.so for pyuwsgi (UWSGI_GLUSTER_PYUWSGI, built with
 *    pyuwsgi's own --cflags by `scripts/uwsgi_build.py pyplugin`), loaded by
 *    the uwsgi-gluster launcher (uwsgi_gluster/cplugin.py) before any of the
 *    user's arguments: as in ./uwsgi, `plugins = glusterfs` then finds the
 *    name taken, and the launcher adds the Python side's options;
 *
 *  - glusterfs_plugin.so for a distribution's uwsgi (UWSGI_GLUSTER_DSO, built
 *    with `uwsgi --build-plugin packaging/plugin`): loading it also loads the
 *    python3 plugin (the ELF `requires` section, see uwsgiplugin.py), and
 *    adds the options that import uwsgi_gluster.plugin, so an ini written for
 *    the native plugin (`plugins = glusterfs`) runs unchanged.
 *
 * In ./uwsgi and the distribution's, the glusterfs-* options are known options: listed by --help,
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

/* Not in the build for pyuwsgi (UWSGI_GLUSTER_PYUWSGI): there the launcher
 * hands the glusterfs-* options to uWSGI as `--set key=value` and the Python
 * side checks every value (uwsgi_gluster/check.py); declared here, uWSGI's own
 * int parser would refuse e.g. glusterfs-timeout = -1 with a line of its own. */
#ifndef UWSGI_GLUSTER_PYUWSGI
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
#endif

/*
 * Hot answers: plain GET/HEAD hits answered here, without entering Python.
 *
 * Python (uwsgi_gluster/hotanswers.py) decides everything: when it answers a
 * plain GET with 200 and the whole file, it may write that answer to a file
 * in the instance's hot directory (its path is in the environment variable
 * HOT_DIR_ENV, set by Python before the workers serve). Contract of a hot
 * file (little-endian, see hotanswers.py for the writer):
 *
 *   0  8  magic "UGHOT01\0"
 *   8  4  body offset (= 64 + path + volume path + head lengths)
 *  12  4  request path length        16  4  volume path length
 *  20  4  head length                24  4  flags (HOT_PRECOMPRESSED)
 *  28  4  freshness in ms            32 32  the file's identity (Python only)
 *  64     the request's PATH_INFO, exactly as uWSGI parsed it
 *         the path on the volume (Python only)
 *         the head: "200 OK\n" then one "Name: value\n" per header, in order
 *         the body (the file's bytes, the whole Content-Length)
 *
 * Named by FNV-1a 64 of PATH_INFO in 16 lower-case hex digits. Written to a
 * temporary file and renamed into place, never changed after: a reader sees
 * one complete answer or none. Its mtime is the moment (wall clock) before
 * which Python last found the volume file's identity unchanged: the answer
 * is served only while 0 <= now - mtime < freshness, so a file changed on the
 * volume is never answered in its old form more than `freshness` after the
 * change (Python's background refresher touches the answers that were read
 * since their last validation: reading sets the atime past the mtime).
 *
 * Any doubt (no directory, no file, not fresh, a length that does not add up,
 * a path that differs: a hash collision) and the request goes to Python.
 */
#define HOT_DIR_ENV "UWSGI_GLUSTER_HOT_DIR"
#define HOT_ACTIVE_ENV "UWSGI_GLUSTER_HOT_ANSWERS"
#define HOT_MAGIC "UGHOT01"
#define HOT_FIXED 64
#define HOT_PRECOMPRESSED 1
/* no hot file is bigger: Python writes bodies up to 64 KiB, paths up to 4 KiB */
#define HOT_MAX_FILE (256 * 1024)
#define HOT_MAX_PATH 4096
/* the first read takes this much: a small answer whole, else its header part
 * (paths and head) and the body goes out with sendfile */
#define HOT_FIRST_READ (4 * 1024)

static int hot_dir_fd = -1;

static uint64_t hot_fnv1a64(const char *data, size_t len) {
	uint64_t hash = 0xcbf29ce484222325ULL;
	size_t i;
	for (i = 0; i < len; i++) {
		hash ^= (unsigned char) data[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static uint32_t hot_u32(const char *p) {
	const unsigned char *u = (const unsigned char *) p;
	return (uint32_t) u[0] | ((uint32_t) u[1] << 8) | ((uint32_t) u[2] << 16) | ((uint32_t) u[3] << 24);
}

/* The hot directory of this process, opened once: a directory (never through
 * a symlink) owned by us with mode 0700, or -1 (then asked again next time,
 * e.g. before Python set the variable under lazy-apps). */
static int hot_dir(void) {
	if (hot_dir_fd >= 0)
		return hot_dir_fd;
	char *path = getenv(HOT_DIR_ENV);
	if (!path || path[0] != '/')
		return -1;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
		close(fd);
		return -1;
	}
	hot_dir_fd = fd;
	return fd;
}

/* Only GET and HEAD with no header that can change the answer: Range, any
 * If-*, and Accept-Encoding when the answer's mount serves precompressed
 * variants (found later, in the file's flags). The same rule as Python's
 * hotpath.plain(). Returns -1 (not plain), or whether Accept-Encoding was sent. */
static int hot_plain(struct wsgi_request *wsgi_req) {
	if (!((wsgi_req->method_len == 3 && !memcmp(wsgi_req->method, "GET", 3)) ||
	      (wsgi_req->method_len == 4 && !memcmp(wsgi_req->method, "HEAD", 4))))
		return -1;
	/* the app is chosen by SCRIPT_NAME/UWSGI_APPID: Python writes hot answers
	 * only for the default app, reached with neither */
	if (wsgi_req->script_name_len || wsgi_req->appid_len)
		return -1;
	int accept_encoding = 0;
	int i;
	for (i = 0; i < wsgi_req->var_cnt; i += 2) {
		char *key = wsgi_req->hvec[i].iov_base;
		size_t len = wsgi_req->hvec[i].iov_len;
		if (len < 7 || memcmp(key, "HTTP_", 5))
			continue;
		if (len == 10 && !memcmp(key + 5, "RANGE", 5))
			return -1;
		if (len > 8 && !memcmp(key + 5, "IF_", 3))
			return -1;
		if (len == 20 && !memcmp(key + 5, "ACCEPT_ENCODING", 15))
			accept_encoding = 1;
	}
	return accept_encoding;
}

/* The glusterfs metrics (uwsgi_gluster/metrics.py) a hot answer counts, as the
 * Python side counts a cache hit: hot answers exist only for a single mount at
 * `/`, whose metrics are named "root". Looked up at the first hit (after
 * uWSGI set up its metrics); NULL when the metrics are off. */
static struct uwsgi_metric *hot_metric_2xx, *hot_metric_bytes, *hot_metric_hits;
static volatile int hot_metrics_looked_up;

/* Under uWSGI's metrics lock, as uwsgi.metric_inc() counts from Python (a
 * read, add and write under the lock: an atomic add outside it could be lost).
 * The lock is one for every thread of every worker: a hit takes it once. */
static void hot_count(struct uwsgi_metric *metric, int64_t n) {
	if (metric && n)
		*metric->value += n;
}

static void hot_count_answer(int64_t body_bytes) {
	if (!uwsgi.has_metrics)
		return;
	if (!hot_metrics_looked_up) {
		hot_metric_2xx = uwsgi_metric_find_by_name("glusterfs.root.requests_2xx");
		hot_metric_bytes = uwsgi_metric_find_by_name("glusterfs.root.bytes_sent");
		hot_metric_hits = uwsgi_metric_find_by_name("glusterfs.root.cache_hits");
		hot_metrics_looked_up = 1;
	}
	uwsgi_wlock(uwsgi.metrics_lock);
	hot_count(hot_metric_2xx, 1);
	hot_count(hot_metric_bytes, body_bytes);
	hot_count(hot_metric_hits, 1);
	uwsgi_rwunlock(uwsgi.metrics_lock);
}

/* Answer the request from its hot file: UWSGI_OK once anything was written
 * (errors writing to the client are the core's), -1 when Python must answer
 * (nothing was written). */
static int hot_answer(struct wsgi_request *wsgi_req) {
	if (!wsgi_req->path_info_len || wsgi_req->path_info_len > HOT_MAX_PATH)
		return -1;
	int accept_encoding = hot_plain(wsgi_req);
	if (accept_encoding < 0)
		return -1;
	int dir = hot_dir();
	if (dir < 0)
		return -1;
	char name[17];
	snprintf(name, sizeof(name), "%016llx",
		 (unsigned long long) hot_fnv1a64(wsgi_req->path_info, wsgi_req->path_info_len));
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char *buf = NULL;
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < HOT_FIXED || st.st_size > HOT_MAX_FILE)
		goto python;
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now))
		goto python;
	/* ns since the last validation; a clock that went back counts as stale */
	int64_t age = ((int64_t) now.tv_sec - (int64_t) st.st_mtim.tv_sec) * 1000000000LL
		      + ((int64_t) now.tv_nsec - (int64_t) st.st_mtim.tv_nsec);
	if (age < 0)
		goto python;
	size_t size = st.st_size;
	size_t have = size < HOT_FIRST_READ ? size : HOT_FIRST_READ;
	buf = malloc(have);
	if (!buf)
		goto python;
	/* a read: also what marks the answer used (atime) for the refresher */
	if (pread(fd, buf, have, 0) != (ssize_t) have)
		goto python;
	if (memcmp(buf, HOT_MAGIC, 8))
		goto python;
	uint64_t offset = hot_u32(buf + 8), path_len = hot_u32(buf + 12), volume_len = hot_u32(buf + 16);
	uint64_t head_len = hot_u32(buf + 20), flags = hot_u32(buf + 24), freshness_ms = hot_u32(buf + 28);
	if (offset != HOT_FIXED + path_len + volume_len + head_len || offset > size)
		goto python;
	if (offset > have) {
		/* long paths or head (rare): read it all */
		char *all = realloc(buf, size);
		if (!all)
			goto python;
		buf = all;
		if (pread(fd, buf + have, size - have, have) != (ssize_t) (size - have))
			goto python;
		have = size;
	}
	if (age >= (int64_t) freshness_ms * 1000000LL)
		goto python;
	if ((flags & HOT_PRECOMPRESSED) && accept_encoding)
		goto python;
	if (path_len != wsgi_req->path_info_len || memcmp(buf + HOT_FIXED, wsgi_req->path_info, path_len))
		goto python;
	/* the head: a status line, then headers; all checked before anything is sent */
	char *head = buf + HOT_FIXED + path_len + volume_len, *end = head + head_len;
	char *status_end = memchr(head, '\n', head_len);
	if (!status_end || head_len > 65535 || status_end - head > 255 || end[-1] != '\n')
		goto python;
	char *line;
	for (line = status_end + 1; line < end;) {
		char *eol = memchr(line, '\n', end - line);
		char *colon = memchr(line, ':', eol - line);
		if (!colon || colon == line || colon + 1 >= eol || colon[1] != ' ')
			goto python;
		line = eol + 1;
	}
	/* the request log and stats count it for the default app (Python's, the
	 * one that wrote the answer), as if Python had served it */
	if (uwsgi.default_app > -1 && uwsgi_apps[uwsgi.default_app].modifier1 == PYTHON_MODIFIER1) {
		wsgi_req->app_id = uwsgi.default_app;
		__sync_fetch_and_add(&uwsgi_apps[wsgi_req->app_id].requests, 1);
	}

	hot_count_answer(wsgi_req->method_len == 4 ? 0 : (int64_t) (size - offset));
	/* from here the answer is ours: the same response API calls the Python
	 * plugin makes for start_response() and a one-chunk body */
	if (uwsgi_response_prepare_headers(wsgi_req, head, status_end - head))
		goto done;
	for (line = status_end + 1; line < end;) {
		char *eol = memchr(line, '\n', end - line);
		char *colon = memchr(line, ':', eol - line);
		if (uwsgi_response_add_header(wsgi_req, line, colon - line, colon + 2, eol - colon - 2))
			goto done;
		line = eol + 1;
	}
	if (wsgi_req->method_len == 4 || offset == size) {
		uwsgi_response_write_headers_do(wsgi_req);
	} else if (have == size) {
		/* headers and body in one writev, as for Python's one-chunk bodies */
		uwsgi_response_write_body_do(wsgi_req, buf + offset, size - offset);
	} else {
		/* headers, then the body with sendfile (or offloaded), as for
		 * Python's wsgi.file_wrapper. TCP_CORK while both are queued (as
		 * nginx's tcp_nopush): the headers leave in the body's first
		 * segment, not in a packet of their own that wakes the client for
		 * nothing; uncorking sends what is left at once. TCP_NODELAY so
		 * that the end of the body never waits for the client's delayed
		 * ACK, unless uWSGI already sets it on every connection
		 * (tcp-nodelay). On a unix socket the calls fail harmlessly. */
		int one = 1, zero = 0;
		if (!uwsgi.tcp_nodelay)
			setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
		if (uwsgi_response_write_headers_do(wsgi_req) == UWSGI_OK) {
			/* closes fd (or hands it to an offload thread) */
			uwsgi_response_sendfile_do_can_close(wsgi_req, fd, offset, size - offset, 1);
			fd = -1;
		}
		setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	}
done:
	free(buf);
	if (fd >= 0)
		close(fd);
	return UWSGI_OK;
python:
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * A modifier1 27 request is answered from its hot file when it has a fresh
 * one (hot_answer), else handed to the Python plugin's request handler. Its
 * modifier1 is set to 0 first, in both cases: uWSGI looks up the exception
 * hooks and the after_request hook (the request log) by the request's
 * modifier1, so the Python plugin's own are used. A Python exception is then
 * logged and cleared instead of staying pending into the response's close()
 * (see README, "How it works").
 */
static int glusterfs_request(struct wsgi_request *wsgi_req) {
	wsgi_req->uh->modifier1 = PYTHON_MODIFIER1;
	if (hot_answer(wsgi_req) == UWSGI_OK)
		return UWSGI_OK;
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

#ifndef UWSGI_GLUSTER_DSO
/* Under lazy-apps with 2 or more processes, ./uwsgi makes SIGHUP a chain
 * reload (uwsgi_gluster/reload.py, from the embedded config's master-start
 * hook): one worker at a time, so new connections keep being answered while
 * downloads finish. The master calls touch-reload's reload itself, every
 * worker at once; so its files are watched as touch-chain-reload files. Runs
 * at plugin init: the options are parsed, the master has not checked any
 * touch file yet. */
static void glusterfs_chain_touch_reload(void) {
	if (!uwsgi.lazy_apps || uwsgi.numproc < 2 || !uwsgi.touch_reload)
		return;
	struct uwsgi_string_list *usl;
	uwsgi_foreach(usl, uwsgi.touch_reload) {
		uwsgi_string_new_list(&uwsgi.touch_chain_reload, usl->value);
		uwsgi_log("[glusterfs] touch-reload %s reloads the workers one at a time (lazy-apps: chain reload)\n",
			  usl->value);
	}
	uwsgi.touch_reload = NULL;
}
#endif

/* Tell the Python side that requests reach glusterfs_request (and so hot
 * answers are read): set before the apps are loaded. */
static int glusterfs_init(void) {
	setenv(HOT_ACTIVE_ENV, "1", 1);
#ifndef UWSGI_GLUSTER_DSO
	glusterfs_chain_touch_reload();
#endif
	return 0;
}

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
#ifndef UWSGI_GLUSTER_PYUWSGI
	.options = glusterfs_options,
#endif
	.request = glusterfs_request,
#ifndef UWSGI_GLUSTER_DSO
	.post_init = glusterfs_post_init,
#endif
	.init = glusterfs_init,
#ifdef UWSGI_GLUSTER_DSO
	.on_load = glusterfs_on_load,
#endif
};

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

/*
 * Open answers: each worker keeps the hot files it sent open, with their
 * first part read and checked, as nginx's open_file_cache keeps descriptors.
 * A request still looks at the file in place at its name (one fstatat, never
 * following a symlink) and uses the kept one only while it is that same
 * inode: the freshness (mtime), a replaced or removed answer and whether it
 * was read since its validation (atime) are judged on the file as it is, as
 * if it were opened again; only the open, read and close are saved. Hot files
 * are never written in place (written aside, then renamed), so an inode's
 * bytes never change while it is kept.
 *
 * HOT_WAYS-way sets, one lock each. An entry is counted (refs) while a thread
 * sends from it, and closed and freed by the last one out once it left its
 * set: replaced, evicted, or unused for HOT_IDLE_NS (a thread of the worker
 * looks every HOT_SWEEP_NS: a removed answer's memory is not held long). At
 * most HOT_MAX_SETS x HOT_WAYS descriptors, and at most a quarter of what
 * RLIMIT_NOFILE allows over 256; none when that is nothing.
 */
#define HOT_WAYS 4
#define HOT_MAX_SETS 256
#define HOT_IDLE_NS (2 * 1000000000LL)
#define HOT_SWEEP_NS (1000000000LL)

struct hot_entry {
	uint64_t hash;
	dev_t dev;
	ino_t ino;
	off_t size;
	int fd;
	int refs;
	int out; /* no longer in its set: freed by the last release */
	size_t set;
	int64_t used_ns;
	char *buf; /* the file's first `have` bytes */
	size_t have;
	uint64_t offset, path_len, volume_len, head_len, flags, freshness_ms, status_len;
};

struct hot_set {
	pthread_mutex_t lock;
	struct hot_entry *way[HOT_WAYS];
};

static struct hot_set *hot_sets;
static size_t hot_nsets;
static pthread_once_t hot_sets_once = PTHREAD_ONCE_INIT;

static void *hot_sweeper(void *);

static void hot_sets_init(void) {
	struct rlimit limit;
	size_t fds = HOT_MAX_SETS * HOT_WAYS;
	if (getrlimit(RLIMIT_NOFILE, &limit))
		return;
	if (limit.rlim_cur != RLIM_INFINITY) {
		size_t spare = limit.rlim_cur > 256 ? (limit.rlim_cur - 256) / 4 : 0;
		if (spare < fds)
			fds = spare;
	}
	size_t n = fds / HOT_WAYS, i;
	if (!n)
		return;
	struct hot_set *sets = calloc(n, sizeof(*sets));
	if (!sets)
		return;
	for (i = 0; i < n; i++)
		pthread_mutex_init(&sets[i].lock, NULL);
	hot_sets = sets;
	hot_nsets = n;
	/* without its sweeper nothing is kept */
	pthread_t sweeper;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	if (pthread_create(&sweeper, &attr, hot_sweeper, NULL)) {
		hot_sets = NULL;
		hot_nsets = 0;
		free(sets);
	}
	pthread_attr_destroy(&attr);
}

static int64_t hot_monotonic_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void hot_entry_free(struct hot_entry *e) {
	if (e->fd >= 0)
		close(e->fd);
	free(e->buf);
	free(e);
}

/* Under its set's lock: take way `way`'s entry out of the set; 1 if nobody
 * sends from it (the caller frees it, after unlocking). */
static int hot_way_out(struct hot_set *set, int way) {
	struct hot_entry *e = set->way[way];
	set->way[way] = NULL;
	e->out = 1;
	return e->refs == 0;
}

/* Done sending from `e`. */
static void hot_entry_release(struct hot_entry *e) {
	int last = 1;
	if (e->set < hot_nsets) {
		struct hot_set *set = &hot_sets[e->set];
		pthread_mutex_lock(&set->lock);
		last = --e->refs == 0 && e->out;
		pthread_mutex_unlock(&set->lock);
	}
	if (last)
		hot_entry_free(e);
}

/* The kept entry of answer `hash` if it is the inode `st` describes (counted:
 * release it), else NULL; a kept one that is not is let go. */
static struct hot_entry *hot_entry_get(uint64_t hash, const struct stat *st, int64_t now) {
	if (!hot_nsets)
		return NULL;
	struct hot_set *set = &hot_sets[hash % hot_nsets];
	struct hot_entry *found = NULL, *gone = NULL;
	int way;
	pthread_mutex_lock(&set->lock);
	for (way = 0; way < HOT_WAYS; way++) {
		struct hot_entry *e = set->way[way];
		if (!e || e->hash != hash)
			continue;
		if (e->ino == st->st_ino && e->dev == st->st_dev && e->size == st->st_size) {
			e->refs++;
			e->used_ns = now;
			found = e;
		} else if (hot_way_out(set, way)) {
			gone = e;
		}
		break;
	}
	pthread_mutex_unlock(&set->lock);
	if (gone)
		hot_entry_free(gone);
	return found;
}

/* Keep the new entry `e` (counted once, for the caller) in its set: in place
 * of the answer's previous entry, else in an empty way, else in place of the
 * least recently used. Without sets it is only the caller's. */
static void hot_entry_keep(struct hot_entry *e) {
	e->refs = 1;
	e->set = (size_t) -1;
	if (!hot_nsets)
		return;
	e->set = e->hash % hot_nsets;
	struct hot_set *set = &hot_sets[e->set];
	struct hot_entry *gone = NULL;
	int way, same = -1, empty = -1, oldest = -1;
	pthread_mutex_lock(&set->lock);
	for (way = 0; way < HOT_WAYS; way++) {
		struct hot_entry *other = set->way[way];
		if (!other) {
			if (empty < 0)
				empty = way;
		} else if (other->hash == e->hash) {
			same = way;
		} else if (oldest < 0 || other->used_ns < set->way[oldest]->used_ns) {
			oldest = way;
		}
	}
	int victim = same >= 0 ? same : empty >= 0 ? empty : oldest;
	struct hot_entry *old = set->way[victim];
	if (old && hot_way_out(set, victim))
		gone = old;
	set->way[victim] = e;
	pthread_mutex_unlock(&set->lock);
	if (gone)
		hot_entry_free(gone);
}

/* The worker's sweeper (started with the sets): every HOT_SWEEP_NS, let go
 * of the entries nobody used for HOT_IDLE_NS. */
static void *hot_sweeper(void *unused) {
	(void) unused;
	for (;;) {
		struct timespec pause = {HOT_SWEEP_NS / 1000000000LL, HOT_SWEEP_NS % 1000000000LL};
		nanosleep(&pause, NULL);
		int64_t now = hot_monotonic_ns();
		size_t i;
		for (i = 0; i < hot_nsets; i++) {
			struct hot_set *set = &hot_sets[i];
			struct hot_entry *gone[HOT_WAYS];
			int way, n = 0;
			pthread_mutex_lock(&set->lock);
			for (way = 0; way < HOT_WAYS; way++) {
				struct hot_entry *e = set->way[way];
				if (e && now - e->used_ns >= HOT_IDLE_NS && hot_way_out(set, way))
					gone[n++] = e;
			}
			pthread_mutex_unlock(&set->lock);
			while (n)
				hot_entry_free(gone[--n]);
		}
	}
	return NULL;
}

/* A new entry for the hot file `name` (answer `hash`), which `st` (fstatat)
 * described: opened, its first part read and checked (the format, the head's
 * lines); NULL when it is not that file any more or not a well-formed answer
 * (then Python answers). */
static struct hot_entry *hot_entry_load(int dir, const char *name, uint64_t hash, const struct stat *st) {
	struct hot_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (e->fd < 0)
		goto bad;
	struct stat opened;
	if (fstat(e->fd, &opened) || opened.st_ino != st->st_ino || opened.st_dev != st->st_dev
	    || opened.st_size != st->st_size)
		goto bad;
	e->hash = hash;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	size_t size = st->st_size;
	e->have = size < HOT_FIRST_READ ? size : HOT_FIRST_READ;
	e->buf = malloc(e->have);
	/* a read: also what marks the answer used (atime) for the refresher */
	if (!e->buf || pread(e->fd, e->buf, e->have, 0) != (ssize_t) e->have)
		goto bad;
	char *buf = e->buf;
	if (memcmp(buf, HOT_MAGIC, 8))
		goto bad;
	e->offset = hot_u32(buf + 8);
	e->path_len = hot_u32(buf + 12);
	e->volume_len = hot_u32(buf + 16);
	e->head_len = hot_u32(buf + 20);
	e->flags = hot_u32(buf + 24);
	e->freshness_ms = hot_u32(buf + 28);
	if (e->offset != HOT_FIXED + e->path_len + e->volume_len + e->head_len || e->offset > size)
		goto bad;
	if (e->offset > e->have) {
		/* long paths or head (rare): read it all */
		char *all = realloc(e->buf, size);
		if (!all)
			goto bad;
		e->buf = buf = all;
		if (pread(e->fd, buf + e->have, size - e->have, e->have) != (ssize_t) (size - e->have))
			goto bad;
		e->have = size;
	}
	/* the head: a status line, then headers; all checked before anything is sent */
	char *head = buf + HOT_FIXED + e->path_len + e->volume_len, *end = head + e->head_len;
	char *status_end = memchr(head, '\n', e->head_len);
	if (!status_end || e->head_len > 65535 || status_end - head > 255 || end[-1] != '\n')
		goto bad;
	e->status_len = status_end - head;
	char *line;
	for (line = status_end + 1; line < end;) {
		char *eol = memchr(line, '\n', end - line);
		char *colon = memchr(line, ':', eol - line);
		if (!colon || colon == line || colon + 1 >= eol || colon[1] != ' ')
			goto bad;
		line = eol + 1;
	}
	return e;
bad:
	hot_entry_free(e);
	return NULL;
}

/* TCP_NODELAY set on every listening TCP socket (glusterfs_post_fork): the
 * connections accepted from them have it too (Linux copies it), so neither
 * uWSGI (tcp-nodelay) nor a hot answer sets it per request. */
static int hot_listen_nodelay;

/* uWSGI's uwsgi_response_write_headers_do(), for a plain TCP socket (base
 * protocol writes, no offload), but the headers are sent with MSG_MORE: they
 * wait for the body that sendfile queues next and leave in its first segment
 * (as nginx's tcp_nopush; sendfile's last page pushes everything). The same
 * steps as uWSGI's: response routes, additional headers, the protocol's
 * closing of the headers, then the write, waiting for the socket as it does.
 * Returns UWSGI_OK, or -1 (nothing more is to be written). */
static int hot_write_headers_more(struct wsgi_request *wsgi_req) {
	if (wsgi_req->headers_sent || !wsgi_req->headers || wsgi_req->response_size || wsgi_req->write_errors)
		return -1;
#ifdef UWSGI_ROUTING
	if (wsgi_req->is_response_routing == 0) {
		if (uwsgi_apply_response_routes(wsgi_req) == UWSGI_ROUTE_BREAK) {
			wsgi_req->ignore_body = 1;
			return -1;
		}
		wsgi_req->is_response_routing = 0;
	}
#endif
	struct uwsgi_string_list *ah;
	for (ah = uwsgi.additional_headers; ah; ah = ah->next)
		if (uwsgi_response_add_header(wsgi_req, NULL, 0, ah->value, ah->len))
			return -1;
	for (ah = wsgi_req->additional_headers; ah; ah = ah->next)
		if (uwsgi_response_add_header(wsgi_req, NULL, 0, ah->value, ah->len))
			return -1;
	if (wsgi_req->socket->proto_fix_headers(wsgi_req)) {
		wsgi_req->write_errors++;
		return -1;
	}
	size_t len = wsgi_req->headers->pos, pos = 0;
	while (pos < len) {
		ssize_t sent = send(wsgi_req->fd, wsgi_req->headers->buf + pos, len - pos, MSG_MORE | MSG_NOSIGNAL);
		if (sent > 0) {
			pos += sent;
			continue;
		}
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int ready = uwsgi_wait_write_req(wsgi_req);
			if (ready > 0)
				continue;
			if (ready == 0)
				uwsgi_log("uwsgi_response_write_headers_do() TIMEOUT !!!\n");
		} else if (!uwsgi.ignore_write_errors) {
			uwsgi_req_error("uwsgi_response_write_headers_do()");
		}
		wsgi_req->write_errors++;
		return -1;
	}
	wsgi_req->headers_size += len;
	wsgi_req->write_pos = 0;
	wsgi_req->headers_sent = 1;
	return UWSGI_OK;
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
	pthread_once(&hot_sets_once, hot_sets_init);
	uint64_t hash = hot_fnv1a64(wsgi_req->path_info, wsgi_req->path_info_len);
	char name[17];
	int digit;
	for (digit = 0; digit < 16; digit++)
		name[digit] = "0123456789abcdef"[(hash >> (60 - 4 * digit)) & 0xf];
	name[16] = 0;
	struct stat st;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) || st.st_size < HOT_FIXED
	    || st.st_size > HOT_MAX_FILE)
		return -1;
	struct timespec now;
	if (clock_gettime(CLOCK_REALTIME, &now))
		return -1;
	/* ns since the last validation; a clock that went back counts as stale */
	int64_t age = ((int64_t) now.tv_sec - (int64_t) st.st_mtim.tv_sec) * 1000000000LL
		      + ((int64_t) now.tv_nsec - (int64_t) st.st_mtim.tv_nsec);
	if (age < 0)
		return -1;
	int64_t used = hot_monotonic_ns();
	/* not read since its validation (the refresher set its atime to 0) */
	int unread = st.st_atim.tv_sec < st.st_mtim.tv_sec
		     || (st.st_atim.tv_sec == st.st_mtim.tv_sec && st.st_atim.tv_nsec <= st.st_mtim.tv_nsec);
	struct hot_entry *e = hot_entry_get(hash, &st, used);
	if (!e) {
		e = hot_entry_load(dir, name, hash, &st);
		if (!e)
			return -1;
		e->used_ns = used;
		hot_entry_keep(e);
		unread = 0; /* just read */
	}
	size_t size = e->size;
	char *buf = e->buf;
	if (age >= (int64_t) e->freshness_ms * 1000000LL)
		goto python;
	if ((e->flags & HOT_PRECOMPRESSED) && accept_encoding)
		goto python;
	if (e->path_len != wsgi_req->path_info_len || memcmp(buf + HOT_FIXED, wsgi_req->path_info, e->path_len))
		goto python;
	char *head = buf + HOT_FIXED + e->path_len + e->volume_len, *end = head + e->head_len;
	char *status_end = head + e->status_len, *line;
	/* the request log and stats count it for the default app (Python's, the
	 * one that wrote the answer), as if Python had served it */
	if (uwsgi.default_app > -1 && uwsgi_apps[uwsgi.default_app].modifier1 == PYTHON_MODIFIER1) {
		wsgi_req->app_id = uwsgi.default_app;
		__sync_fetch_and_add(&uwsgi_apps[wsgi_req->app_id].requests, 1);
	}

	int sends_file = !(wsgi_req->method_len == 4 || e->offset == size || e->have == size);
	if (unread && !sends_file) {
		/* mark it read (atime) for the refresher, as sendfile would */
		char byte;
		if (pread(e->fd, &byte, 1, 0) != 1)
			goto python;
	}
	hot_count_answer(wsgi_req->method_len == 4 ? 0 : (int64_t) (size - e->offset));
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
	if (wsgi_req->method_len == 4 || e->offset == size) {
		uwsgi_response_write_headers_do(wsgi_req);
	} else if (e->have == size) {
		/* headers and body in one writev, as for Python's one-chunk bodies */
		uwsgi_response_write_body_do(wsgi_req, buf + e->offset, size - e->offset);
	} else {
		/* headers, then the body with sendfile, as for Python's
		 * wsgi.file_wrapper, in one segment on the wire. TCP_NODELAY so that
		 * the end of the body never waits for the client's delayed ACK,
		 * unless the connection already has it. On a unix socket the calls
		 * fail harmlessly. */
		int one = 1, zero = 0;
		if (!uwsgi.tcp_nodelay && !hot_listen_nodelay)
			setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!wsgi_req->socket->can_offload && wsgi_req->socket->proto_write_headers == uwsgi_proto_base_write
		    && wsgi_req->socket->proto_sendfile == uwsgi_proto_base_sendfile) {
			/* plain TCP: the headers with MSG_MORE */
			if (hot_write_headers_more(wsgi_req) == UWSGI_OK)
				uwsgi_response_sendfile_do_can_close(wsgi_req, e->fd, e->offset, size - e->offset, 0);
		} else {
			/* another protocol (e.g. TLS) or offloading (uWSGI sends a dup
			 * of the kept descriptor): uWSGI's own writes under TCP_CORK
			 * while both are queued; uncorking sends what is left at once */
			setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
			if (uwsgi_response_write_headers_do(wsgi_req) == UWSGI_OK)
				uwsgi_response_sendfile_do_can_close(wsgi_req, e->fd, e->offset, size - e->offset, 0);
			setsockopt(wsgi_req->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
		}
	}
done:
	hot_entry_release(e);
	return UWSGI_OK;
python:
	hot_entry_release(e);
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

/* In each worker: TCP_NODELAY on every TCP listening socket (see
 * hot_listen_nodelay); unix sockets are left alone. */
static void glusterfs_post_fork(void) {
	struct uwsgi_socket *sock;
	int all = 1, one = 1;
	for (sock = uwsgi.sockets; sock; sock = sock->next) {
		if (sock->fd < 0 || (sock->family != AF_INET && sock->family != AF_INET6))
			continue;
		if (setsockopt(sock->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			all = 0;
	}
	hot_listen_nodelay = all;
}

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
	 * requests whose protocol is not HTTP/N[.N] (or absent) are closed unanswered
	 * (HTTP/1.1 skips the regexp, which uWSGI compiles on every request) */
	glusterfs_add_option("route-if", "equal:${SERVER_PROTOCOL};HTTP/1.1 goto:glusterfs-protocol-ok");
	glusterfs_add_option("route-if-not", "regexp:${SERVER_PROTOCOL};^(HTTP/[0-9](\\.[0-9])?)?$ break:");
	glusterfs_add_option("route-label", "glusterfs-protocol-ok");
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
	.post_fork = glusterfs_post_fork,
#ifdef UWSGI_GLUSTER_DSO
	.on_load = glusterfs_on_load,
#endif
};

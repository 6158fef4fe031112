/*
 * panthor-client: a small test client for the panthor DRM uAPI, run inside the mali-vdev
 * guest against /dev/dri/renderD128.
 *
 * Plain C, no libdrm: the ioctl argument structs below are our own definitions of the
 * layouts in the guest kernel's include/uapi/drm/panthor_drm.h (driver version 1.8;
 * the _Static_asserts pin their sizes).  Built statically for arm64 on the host by
 * qemu/tools.py and installed in the initramfs as /usr/bin/panthor-client.
 *
 * Output is machine-readable: one `key=value` per line on stdout (values in 0x-hex for
 * IDs, masks and addresses, decimal for counts).  A failing ioctl prints
 * `error=<IOCTL> errno=<n> errname=<E...> msg=<text>`; the exit status is 0 only if
 * every step succeeded.
 *
 *   panthor-client [--dev PATH] query
 *       DRM version, DEV_QUERY GPU_INFO (every field), CSIF_INFO, GROUP_PRIORITIES_INFO
 *       and TIMESTAMP_INFO twice (frequency, GPU timestamp, offset, cycle count, CPU
 *       time) with the deltas between the two samples.
 *   panthor-client vm-bind [--size N] [--va VA] [--pattern X] [--with-job] [--hold SECONDS]
 *       VM_CREATE, BO_CREATE, BO_MMAP_OFFSET, mmap, VM_BIND map at VA, fill the buffer
 *       through the CPU mapping (32-bit little-endian word i = pattern + i), read it
 *       back, VM_GET_STATE; --with-job: one job on that VM (so panthor gives it a GPU
 *       address space) loads the first four words through the GPU MMU and stores them in
 *       a scratch BO (`job.gpu_read=ok`), its group kept through the hold; optionally
 *       hold everything for SECONDS (`holding=S` is printed first), VM_BIND unmap,
 *       VM_DESTROY.
 *   panthor-client bad-ioctls
 *       Invalid arguments that the driver must reject, each with the errno panthor
 *       returns for it (see panthor_drv.c / panthor_mmu.c).
 *
 * Job commands: GROUP_CREATE (queues with ring sizes and priorities, core masks = the
 * present masks), GROUP_SUBMIT of command buffers (real CS instructions, see the encoders)
 * signalling DRM sync objects (SYNCOBJ_CREATE/WAIT/DESTROY; a fence's error and signal time
 * come from its exported sync file), GROUP_GET_STATE, GROUP_DESTROY:
 *   job-store            MOVE48/MOVE32/STORE_MULTIPLE/WAIT/FLUSH_CACHE2 store 0xdeadbeef
 *   job-loop [N]         a counted loop (ADD_IMM32, BRANCH) stores N
 *   job-sync-chain       SYNC_SET32/SYNC_WAIT32 order two queues of a group, then two
 *                        groups; the waiter is submitted first and must block
 *   groups [N]           N groups at once wait for a release value set by one more group,
 *                        spin, store their index (more groups than CSG slots: rotation)
 *   job-fault            a store to an unmapped VA: fence error, FATAL_FAULT, then a new
 *                        group on a new VM works
 *   job-hang             SYNC_WAIT forever: the driver's job timeout, TIMEDOUT, then a new
 *                        group works
 *   loops [N] [ITER] [--priority P] [--rt-after-ms T]
 *                        N groups each running a counted loop of ITER iterations at
 *                        once; optionally a REALTIME group T ms later: exact counts,
 *                        per-group fence times, whether the real-time group came first
 *   jobs [N] [--depth D] N jobs in a row on one queue (D in flight): jobs/s and
 *                        submission-to-signal latency percentiles
 *   cs-encode            the encoders' words for a set of operands (no device; unit tests)
 *
 * Adding a subcommand: write `static int cmd_x(int fd, int argc, char **argv)` and add
 * it to `commands[]`.  The helpers (`xioctl`, `vm_create`, `bo_create`, `vm_bind_one`,
 * `session_open`, `group_create`, `job_prepare`, `job_submit`, `job_wait`, the `cs_*`
 * encoders, ...) are shared.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------- */
/* uAPI definitions (ours; layouts from the driver's panthor_drm.h and drm.h)          */
/* ---------------------------------------------------------------------------------- */

#define DRM_IOCTL_BASE 'd'
#define DRM_COMMAND_BASE 0x40
#define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)

/* drm.h: struct drm_version (DRM_IOCTL_VERSION = DRM_IOWR(0x00, ...)) */
struct drmv_version {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

enum pt_ioctl_id {
	PT_DEV_QUERY = 0, PT_VM_CREATE, PT_VM_DESTROY, PT_VM_BIND, PT_VM_GET_STATE,
	PT_BO_CREATE, PT_BO_MMAP_OFFSET, PT_GROUP_CREATE, PT_GROUP_DESTROY,
	PT_GROUP_SUBMIT, PT_GROUP_GET_STATE, PT_TILER_HEAP_CREATE, PT_TILER_HEAP_DESTROY,
	PT_BO_SET_LABEL, PT_SET_USER_MMIO_OFFSET, PT_BO_SYNC, PT_BO_QUERY_INFO,
	PT_IOCTL_COUNT
};

struct pt_obj_array {
	uint32_t stride;
	uint32_t count;
	uint64_t array;
};

struct pt_sync_op {
	uint32_t flags;
	uint32_t handle;
	uint64_t timeline_value;
};

enum pt_query_type {
	PT_QUERY_GPU_INFO = 0,
	PT_QUERY_CSIF_INFO = 1,
	PT_QUERY_TIMESTAMP_INFO = 2,
	PT_QUERY_GROUP_PRIORITIES_INFO = 3,
};

struct pt_gpu_info {
	uint32_t gpu_id, gpu_rev, csf_id;
	uint32_t l2_features, tiler_features, mem_features, mmu_features;
	uint32_t thread_features, max_threads, thread_max_workgroup_size;
	uint32_t thread_max_barrier_size, coherency_features;
	uint32_t texture_features[4];
	uint32_t as_present, selected_coherency;
	uint64_t shader_present, l2_present, tiler_present;
	uint32_t core_features, pad;
	uint64_t gpu_features;
};

struct pt_csif_info {
	uint32_t csg_slot_count, cs_slot_count, cs_reg_count, scoreboard_slot_count;
	uint32_t unpreserved_cs_reg_count, pad;
};

/* TIMESTAMP_INFO flags (input; 0 means GPU | GPU_OFFSET | FREQ) */
#define PT_TS_GPU (1u << 0)
#define PT_TS_CPU_MONOTONIC (1u << 1)
#define PT_TS_CPU_MONOTONIC_RAW (2u << 1)
#define PT_TS_GPU_OFFSET (1u << 4)
#define PT_TS_GPU_CYCLE_COUNT (1u << 5)
#define PT_TS_FREQ (1u << 6)
#define PT_TS_DURATION (1u << 7)

struct pt_timestamp_info {
	uint64_t timestamp_frequency, current_timestamp, timestamp_offset;
	uint32_t flags, duration_nsec;
	uint64_t cycle_count, cpu_timestamp_sec, cpu_timestamp_nsec;
};
/* The part every panthor version fills (up to current_timestamp). */
#define PT_TIMESTAMP_INFO_MIN_SIZE 16

struct pt_group_priorities_info {
	uint8_t allowed_mask;
	uint8_t pad[3];
};

struct pt_dev_query {
	uint32_t type;
	uint32_t size;
	uint64_t pointer;
};

struct pt_vm_create {
	uint32_t flags;
	uint32_t id;            /* out */
	uint64_t user_va_range; /* in/out; 0 lets the driver choose */
};

struct pt_vm_destroy {
	uint32_t id, pad;
};

#define PT_BIND_OP_MAP_READONLY (1u << 0)
#define PT_BIND_OP_MAP_NOEXEC (1u << 1)
#define PT_BIND_OP_MAP_UNCACHED (1u << 2)
#define PT_BIND_OP_TYPE_MAP (0u << 28)
#define PT_BIND_OP_TYPE_UNMAP (1u << 28)
#define PT_BIND_OP_TYPE_SYNC_ONLY (2u << 28)
#define PT_VM_BIND_ASYNC (1u << 0)

struct pt_vm_bind_op {
	uint32_t flags;
	uint32_t bo_handle;
	uint64_t bo_offset;
	uint64_t va;
	uint64_t size;
	struct pt_obj_array syncs;
};

struct pt_vm_bind {
	uint32_t vm_id;
	uint32_t flags;
	struct pt_obj_array ops;
};

struct pt_vm_get_state {
	uint32_t vm_id;
	uint32_t state; /* 0 usable, 1 unusable */
};

#define PT_BO_NO_MMAP (1u << 0)
#define PT_BO_WB_MMAP (1u << 1)

struct pt_bo_create {
	uint64_t size; /* in/out (page aligned by the driver) */
	uint32_t flags;
	uint32_t exclusive_vm_id;
	uint32_t handle; /* out */
	uint32_t pad;
};

struct pt_bo_mmap_offset {
	uint32_t handle, pad;
	uint64_t offset; /* out */
};

struct pt_group_get_state {
	uint32_t group_handle, state, fatal_queues, pad;
};

_Static_assert(sizeof(struct pt_obj_array) == 16, "obj_array");
_Static_assert(sizeof(struct pt_gpu_info) == 0x70, "gpu_info");
_Static_assert(sizeof(struct pt_csif_info) == 24, "csif_info");
_Static_assert(sizeof(struct pt_timestamp_info) == 56, "timestamp_info");
_Static_assert(sizeof(struct pt_dev_query) == 16, "dev_query");
_Static_assert(sizeof(struct pt_vm_create) == 16, "vm_create");
_Static_assert(sizeof(struct pt_vm_destroy) == 8, "vm_destroy");
_Static_assert(sizeof(struct pt_vm_bind_op) == 48, "vm_bind_op");
_Static_assert(sizeof(struct pt_vm_bind) == 24, "vm_bind");
_Static_assert(sizeof(struct pt_vm_get_state) == 8, "vm_get_state");
_Static_assert(sizeof(struct pt_bo_create) == 24, "bo_create");
_Static_assert(sizeof(struct pt_bo_mmap_offset) == 16, "bo_mmap_offset");
_Static_assert(sizeof(struct pt_group_get_state) == 16, "group_get_state");

#define IOCTL_VERSION DRM_IOWR(0x00, struct drmv_version)
#define PT_IOCTL(id, type) DRM_IOWR(DRM_COMMAND_BASE + (id), type)
#define IOCTL_DEV_QUERY PT_IOCTL(PT_DEV_QUERY, struct pt_dev_query)
#define IOCTL_VM_CREATE PT_IOCTL(PT_VM_CREATE, struct pt_vm_create)
#define IOCTL_VM_DESTROY PT_IOCTL(PT_VM_DESTROY, struct pt_vm_destroy)
#define IOCTL_VM_BIND PT_IOCTL(PT_VM_BIND, struct pt_vm_bind)
#define IOCTL_VM_GET_STATE PT_IOCTL(PT_VM_GET_STATE, struct pt_vm_get_state)
#define IOCTL_BO_CREATE PT_IOCTL(PT_BO_CREATE, struct pt_bo_create)
#define IOCTL_BO_MMAP_OFFSET PT_IOCTL(PT_BO_MMAP_OFFSET, struct pt_bo_mmap_offset)
#define IOCTL_GROUP_GET_STATE PT_IOCTL(PT_GROUP_GET_STATE, struct pt_group_get_state)

/* ---------------------------------------------------------------------------------- */
/* helpers                                                                             */
/* ---------------------------------------------------------------------------------- */

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case E2BIG: return "E2BIG";
	case ENOTTY: return "ENOTTY";
	case ERANGE: return "ERANGE";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ETIME: return "ETIME";
	case ECANCELED: return "ECANCELED";
	case EIO: return "EIO";
	default: return "E?";
	}
}

/* ioctl, retried on EINTR/EAGAIN like libdrm does; returns 0 or an errno. */
static int pt_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r == -1 && (errno == EINTR || errno == EAGAIN));
	return r == -1 ? errno : 0;
}

/* pt_ioctl that reports a failure as an `error=` line. */
static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int e = pt_ioctl(fd, req, arg);

	if (e)
		printf("error=%s errno=%d errname=%s msg=%s\n", what, e, errname(e), strerror(e));
	return e;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end ? -1 : 0;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* DEV_QUERY: size query first, then fetch min(driver size, our size). 0 or errno. */
static int dev_query(int fd, uint32_t type, void *buf, uint32_t size, uint32_t *got,
		     const char *what)
{
	struct pt_dev_query q = { .type = type };
	int e = xioctl(fd, IOCTL_DEV_QUERY, &q, what);

	if (e)
		return e;
	if (q.size < size)
		size = q.size;
	q.size = size;
	q.pointer = (uint64_t)(uintptr_t)buf;
	e = xioctl(fd, IOCTL_DEV_QUERY, &q, what);
	if (!e && got)
		*got = q.size;
	return e;
}

static int vm_create(int fd, uint32_t *id, uint64_t *user_va_range)
{
	struct pt_vm_create a = { 0 };
	int e = xioctl(fd, IOCTL_VM_CREATE, &a, "VM_CREATE");

	if (!e) {
		*id = a.id;
		if (user_va_range)
			*user_va_range = a.user_va_range;
	}
	return e;
}

static int vm_destroy(int fd, uint32_t id)
{
	struct pt_vm_destroy a = { .id = id };

	return xioctl(fd, IOCTL_VM_DESTROY, &a, "VM_DESTROY");
}

static int bo_create(int fd, uint64_t *size, uint32_t flags, uint32_t exclusive_vm,
		     uint32_t *handle)
{
	struct pt_bo_create a = { .size = *size, .flags = flags,
				  .exclusive_vm_id = exclusive_vm };
	int e = xioctl(fd, IOCTL_BO_CREATE, &a, "BO_CREATE");

	if (!e) {
		*size = a.size;
		*handle = a.handle;
	}
	return e;
}

/* GEM handles are freed with the generic DRM_IOCTL_GEM_CLOSE (drm.h: {u32 handle, pad}). */
struct drmv_gem_close {
	uint32_t handle, pad;
};
#define IOCTL_GEM_CLOSE _IOW(DRM_IOCTL_BASE, 0x09, struct drmv_gem_close)

static int bo_close(int fd, uint32_t handle)
{
	struct drmv_gem_close a = { .handle = handle };

	return xioctl(fd, IOCTL_GEM_CLOSE, &a, "GEM_CLOSE");
}

/* BO_MMAP_OFFSET + mmap(MAP_SHARED); MAP_FAILED on error. */
static void *bo_map(int fd, uint32_t handle, uint64_t size, uint64_t *offset)
{
	struct pt_bo_mmap_offset a = { .handle = handle };
	void *p;

	if (xioctl(fd, IOCTL_BO_MMAP_OFFSET, &a, "BO_MMAP_OFFSET"))
		return MAP_FAILED;
	*offset = a.offset;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)a.offset);
	if (p == MAP_FAILED)
		printf("error=mmap errno=%d errname=%s msg=%s\n", errno, errname(errno),
		       strerror(errno));
	return p;
}

/* One synchronous VM_BIND operation (flags: PT_BIND_OP_TYPE_* | map flags). */
static int vm_bind_one(int fd, uint32_t vm_id, uint32_t flags, uint32_t bo, uint64_t bo_off,
		       uint64_t va, uint64_t size, const char *what)
{
	struct pt_vm_bind_op op = { .flags = flags, .bo_handle = bo, .bo_offset = bo_off,
				    .va = va, .size = size };
	struct pt_vm_bind a = { .vm_id = vm_id,
				.ops = { sizeof(op), 1, (uint64_t)(uintptr_t)&op } };

	return xioctl(fd, IOCTL_VM_BIND, &a, what);
}

static int vm_get_state(int fd, uint32_t vm_id, uint32_t *state)
{
	struct pt_vm_get_state a = { .vm_id = vm_id };
	int e = xioctl(fd, IOCTL_VM_GET_STATE, &a, "VM_GET_STATE");

	if (!e)
		*state = a.state;
	return e;
}

/* ---------------------------------------------------------------------------------- */
/* query                                                                               */
/* ---------------------------------------------------------------------------------- */

static int print_version(int fd)
{
	char name[64] = "", date[64] = "", desc[128] = "";
	struct drmv_version v = { .name_len = sizeof(name) - 1, .name = name,
				  .date_len = sizeof(date) - 1, .date = date,
				  .desc_len = sizeof(desc) - 1, .desc = desc };
	int e = xioctl(fd, IOCTL_VERSION, &v, "VERSION");

	if (e)
		return e;
	printf("driver=%s\n", name);
	printf("driver_version=%d.%d.%d\n", v.version_major, v.version_minor,
	       v.version_patchlevel);
	return 0;
}

static int query_timestamp(int fd, int n, struct pt_timestamp_info *t)
{
	uint32_t got = 0;
	int e;

	memset(t, 0, sizeof(*t));
	t->flags = PT_TS_GPU | PT_TS_CPU_MONOTONIC | PT_TS_GPU_OFFSET | PT_TS_GPU_CYCLE_COUNT |
		   PT_TS_FREQ | PT_TS_DURATION;
	e = dev_query(fd, PT_QUERY_TIMESTAMP_INFO, t, sizeof(*t), &got, "DEV_QUERY_TIMESTAMP_INFO");
	if (e)
		return e;
	if (n == 0) {
		printf("timestamp_info_size=%u\n", got);
		printf("timestamp_freq=%" PRIu64 "\n", t->timestamp_frequency);
		printf("timestamp_offset=0x%" PRIx64 "\n", t->timestamp_offset);
	}
	printf("timestamp%d=%" PRIu64 "\n", n, t->current_timestamp);
	if (got >= sizeof(*t)) {
		printf("cycle_count%d=%" PRIu64 "\n", n, t->cycle_count);
		printf("cpu_ns%d=%" PRIu64 "\n", n,
		       t->cpu_timestamp_sec * (uint64_t)1000000000 + t->cpu_timestamp_nsec);
		printf("duration_nsec%d=%u\n", n, t->duration_nsec);
	}
	return 0;
}

static int cmd_query(int fd, int argc, char **argv)
{
	struct pt_gpu_info g = { 0 };
	struct pt_csif_info c = { 0 };
	struct pt_group_priorities_info p = { 0 };
	struct pt_timestamp_info t0, t1;
	uint32_t got = 0;
	int i, e;

	(void)argc;
	(void)argv;
	if ((e = print_version(fd)))
		return e;

	if ((e = dev_query(fd, PT_QUERY_GPU_INFO, &g, sizeof(g), &got, "DEV_QUERY_GPU_INFO")))
		return e;
	printf("gpu_info_size=%u\n", got);
	printf("gpu_id=0x%08x\n", g.gpu_id);
	printf("gpu_arch=%u.%u.%u\n", g.gpu_id >> 28, (g.gpu_id >> 24) & 0xf,
	       (g.gpu_id >> 20) & 0xf);
	printf("gpu_product_id=0x%04x\n", g.gpu_id >> 16);
	printf("gpu_rev=0x%08x\n", g.gpu_rev);
	printf("csf_id=0x%08x\n", g.csf_id);
	printf("l2_features=0x%08x\n", g.l2_features);
	printf("tiler_features=0x%08x\n", g.tiler_features);
	printf("mem_features=0x%08x\n", g.mem_features);
	printf("mmu_features=0x%08x\n", g.mmu_features);
	printf("thread_features=0x%08x\n", g.thread_features);
	printf("max_threads=%u\n", g.max_threads);
	printf("thread_max_workgroup_size=%u\n", g.thread_max_workgroup_size);
	printf("thread_max_barrier_size=%u\n", g.thread_max_barrier_size);
	printf("coherency_features=0x%08x\n", g.coherency_features);
	for (i = 0; i < 4; i++)
		printf("texture_features%d=0x%08x\n", i, g.texture_features[i]);
	printf("as_present=0x%08x\n", g.as_present);
	printf("selected_coherency=%u\n", g.selected_coherency);
	printf("shader_present=0x%" PRIx64 "\n", g.shader_present);
	printf("l2_present=0x%" PRIx64 "\n", g.l2_present);
	printf("tiler_present=0x%" PRIx64 "\n", g.tiler_present);
	printf("core_features=0x%08x\n", g.core_features);
	printf("gpu_features=0x%" PRIx64 "\n", g.gpu_features);

	if ((e = dev_query(fd, PT_QUERY_CSIF_INFO, &c, sizeof(c), &got, "DEV_QUERY_CSIF_INFO")))
		return e;
	printf("csg_slot_count=%u\n", c.csg_slot_count);
	printf("cs_slot_count=%u\n", c.cs_slot_count);
	printf("cs_reg_count=%u\n", c.cs_reg_count);
	printf("scoreboard_slot_count=%u\n", c.scoreboard_slot_count);
	printf("unpreserved_cs_reg_count=%u\n", c.unpreserved_cs_reg_count);

	if ((e = dev_query(fd, PT_QUERY_GROUP_PRIORITIES_INFO, &p, sizeof(p), &got,
			   "DEV_QUERY_GROUP_PRIORITIES_INFO")))
		return e;
	printf("group_priorities_allowed=0x%x\n", p.allowed_mask);

	if ((e = query_timestamp(fd, 0, &t0)))
		return e;
	sleep_s(0.05);
	if ((e = query_timestamp(fd, 1, &t1)))
		return e;
	printf("timestamp_delta=%" PRId64 "\n",
	       (int64_t)(t1.current_timestamp - t0.current_timestamp));
	if (t0.cpu_timestamp_sec || t0.cpu_timestamp_nsec) {
		int64_t cpu = (int64_t)((t1.cpu_timestamp_sec - t0.cpu_timestamp_sec) * (uint64_t)1000000000 +
					t1.cpu_timestamp_nsec - t0.cpu_timestamp_nsec);
		printf("cpu_delta_ns=%" PRId64 "\n", cpu);
		printf("cycle_count_delta=%" PRId64 "\n",
		       (int64_t)(t1.cycle_count - t0.cycle_count));
	}
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* groups, submissions, sync objects (uAPI)                                            */
/* ---------------------------------------------------------------------------------- */

struct pt_queue_create {
	uint8_t priority; /* 0..15 inside the group */
	uint8_t pad[3];
	uint32_t ringbuf_size; /* 4 KiB..64 KiB, power of two */
};

#define PT_GROUP_PRIORITY_LOW 0
#define PT_GROUP_PRIORITY_MEDIUM 1
#define PT_GROUP_PRIORITY_HIGH 2
#define PT_GROUP_PRIORITY_REALTIME 3

struct pt_group_create {
	struct pt_obj_array queues;
	uint8_t max_compute_cores, max_fragment_cores, max_tiler_cores, priority;
	uint32_t pad;
	uint64_t compute_core_mask, fragment_core_mask, tiler_core_mask;
	uint32_t vm_id;
	uint32_t group_handle; /* out */
};

struct pt_group_destroy {
	uint32_t group_handle, pad;
};

#define PT_SYNC_OP_HANDLE_TYPE_SYNCOBJ 0u
#define PT_SYNC_OP_SIGNAL (1u << 31)

struct pt_queue_submit {
	uint32_t queue_index;
	uint32_t stream_size; /* bytes, multiple of 8 */
	uint64_t stream_addr; /* 64-byte aligned */
	uint32_t latest_flush;
	uint32_t pad;
	struct pt_obj_array syncs;
};

struct pt_group_submit {
	uint32_t group_handle, pad;
	struct pt_obj_array queue_submits;
};

#define PT_GROUP_STATE_TIMEDOUT (1u << 0)
#define PT_GROUP_STATE_FATAL_FAULT (1u << 1)
#define PT_GROUP_STATE_INNOCENT (1u << 2)

/* drm.h: the core DRM sync objects */
struct drmv_syncobj_create {
	uint32_t handle, flags;
};
struct drmv_syncobj_destroy {
	uint32_t handle, pad;
};
struct drmv_syncobj_handle {
	uint32_t handle, flags;
	int32_t fd;
	uint32_t pad;
	uint64_t point;
};
struct drmv_syncobj_wait {
	uint64_t handles;
	int64_t timeout_nsec; /* absolute, CLOCK_MONOTONIC */
	uint32_t count_handles, flags, first_signaled, pad;
	uint64_t deadline_nsec;
};
#define DRMV_SYNCOBJ_WAIT_ALL (1u << 0)
#define DRMV_SYNCOBJ_EXPORT_SYNC_FILE (1u << 0)

/* linux/sync_file.h: what a sync file says about its fence (status < 0: its error) */
struct sf_fence_info {
	char obj_name[32], driver_name[32];
	int32_t status;
	uint32_t flags;
	uint64_t timestamp_ns; /* when it signalled, CLOCK_MONOTONIC */
};
struct sf_file_info {
	char name[32];
	int32_t status;
	uint32_t flags, num_fences, pad;
	uint64_t sync_fence_info;
};

_Static_assert(sizeof(struct pt_queue_create) == 8, "queue_create");
_Static_assert(sizeof(struct pt_group_create) == 56, "group_create");
_Static_assert(sizeof(struct pt_group_destroy) == 8, "group_destroy");
_Static_assert(sizeof(struct pt_queue_submit) == 40, "queue_submit");
_Static_assert(sizeof(struct pt_group_submit) == 24, "group_submit");
_Static_assert(sizeof(struct drmv_syncobj_handle) == 24, "syncobj_handle");
_Static_assert(sizeof(struct drmv_syncobj_wait) == 40, "syncobj_wait");
_Static_assert(sizeof(struct sf_fence_info) == 80, "sync_fence_info");
_Static_assert(sizeof(struct sf_file_info) == 56, "sync_file_info");

#define IOCTL_GROUP_CREATE PT_IOCTL(PT_GROUP_CREATE, struct pt_group_create)
#define IOCTL_GROUP_DESTROY PT_IOCTL(PT_GROUP_DESTROY, struct pt_group_destroy)
#define IOCTL_GROUP_SUBMIT PT_IOCTL(PT_GROUP_SUBMIT, struct pt_group_submit)
#define IOCTL_SYNCOBJ_CREATE DRM_IOWR(0xBF, struct drmv_syncobj_create)
#define IOCTL_SYNCOBJ_DESTROY DRM_IOWR(0xC0, struct drmv_syncobj_destroy)
#define IOCTL_SYNCOBJ_HANDLE_TO_FD DRM_IOWR(0xC1, struct drmv_syncobj_handle)
#define IOCTL_SYNCOBJ_WAIT DRM_IOWR(0xC3, struct drmv_syncobj_wait)
#define IOCTL_SYNC_FILE_INFO _IOWR('>', 4, struct sf_file_info)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int syncobj_create(int fd, uint32_t *handle)
{
	struct drmv_syncobj_create a = { 0 };
	int e = xioctl(fd, IOCTL_SYNCOBJ_CREATE, &a, "SYNCOBJ_CREATE");

	if (!e)
		*handle = a.handle;
	return e;
}

static int syncobj_destroy(int fd, uint32_t handle)
{
	struct drmv_syncobj_destroy a = { .handle = handle };

	return xioctl(fd, IOCTL_SYNCOBJ_DESTROY, &a, "SYNCOBJ_DESTROY");
}

/* Wait until all `n` sync objects signalled (signalled with an error counts too).
 * 0, ETIME when `timeout_ns` passed first, or another errno (printed). */
static int syncobj_wait(int fd, const uint32_t *handles, uint32_t n, uint64_t timeout_ns)
{
	struct drmv_syncobj_wait a = { .handles = (uint64_t)(uintptr_t)handles,
				       .timeout_nsec = (int64_t)(now_ns() + timeout_ns),
				       .count_handles = n, .flags = DRMV_SYNCOBJ_WAIT_ALL };
	int e = pt_ioctl(fd, IOCTL_SYNCOBJ_WAIT, &a);

	if (e && e != ETIME)
		printf("error=SYNCOBJ_WAIT errno=%d errname=%s msg=%s\n", e, errname(e), strerror(e));
	return e;
}

/* The state of the fence a sync object holds, through a sync file: `*status` 1 signalled,
 * 0 pending, < 0 the fence's error (-EINVAL for a faulty job, -ETIMEDOUT after a
 * timeout, ...); `*ts_ns` when it signalled (0 if unknown). */
static int syncobj_fence_status(int fd, uint32_t handle, int32_t *status, uint64_t *ts_ns)
{
	struct drmv_syncobj_handle h = { .handle = handle, .flags = DRMV_SYNCOBJ_EXPORT_SYNC_FILE,
					 .fd = -1 };
	struct sf_fence_info fi[4];
	struct sf_file_info info;
	int e = xioctl(fd, IOCTL_SYNCOBJ_HANDLE_TO_FD, &h, "SYNCOBJ_HANDLE_TO_FD");

	if (e)
		return e;
	memset(fi, 0, sizeof(fi));
	memset(&info, 0, sizeof(info));
	info.num_fences = 4;
	info.sync_fence_info = (uint64_t)(uintptr_t)fi;
	e = xioctl(h.fd, IOCTL_SYNC_FILE_INFO, &info, "SYNC_IOC_FILE_INFO");
	close(h.fd);
	if (e)
		return e;
	*status = info.status;
	if (ts_ns)
		*ts_ns = info.num_fences >= 1 ? fi[0].timestamp_ns : 0;
	return 0;
}

static unsigned popcount64(uint64_t v)
{
	return (unsigned)__builtin_popcountll(v);
}

/* A VM (ours or borrowed) with one BO mapped at `va` and on the CPU, and what the
 * device says about itself. Layout of the BO: data at 0, sync objects at SYNC_OFF,
 * command buffers (64-byte aligned, bump-allocated) from CODE_OFF. */
#define SESSION_VA 0x10000000ull
#define SESSION_SIZE 0x200000ull
#define SYNC_OFF 0x10000u
#define CODE_OFF 0x20000u

struct session {
	int fd;
	uint32_t vm, bo;
	int own_vm;
	uint64_t va, size;
	uint8_t *cpu;
	uint64_t code_next;
	struct pt_gpu_info gpu;
	struct pt_csif_info csif;
};

static int session_open(int fd, struct session *s, uint32_t vm, uint64_t va, uint64_t size)
{
	uint64_t off;
	void *p;
	int e;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->va = va;
	s->size = size;
	s->code_next = CODE_OFF;
	if ((e = dev_query(fd, PT_QUERY_GPU_INFO, &s->gpu, sizeof(s->gpu), NULL,
			   "DEV_QUERY_GPU_INFO")) ||
	    (e = dev_query(fd, PT_QUERY_CSIF_INFO, &s->csif, sizeof(s->csif), NULL,
			   "DEV_QUERY_CSIF_INFO")))
		return e;
	if (vm) {
		s->vm = vm;
	} else {
		if ((e = vm_create(fd, &s->vm, NULL)))
			return e;
		s->own_vm = 1;
	}
	if ((e = bo_create(fd, &s->size, 0, 0, &s->bo)))
		goto err_vm;
	p = bo_map(fd, s->bo, s->size, &off);
	if (p == MAP_FAILED) {
		e = EIO;
		goto err_bo;
	}
	s->cpu = p;
	memset(s->cpu, 0, s->size);
	if ((e = vm_bind_one(fd, s->vm, PT_BIND_OP_TYPE_MAP, s->bo, 0, s->va, s->size,
			     "VM_BIND_MAP")))
		goto err_map;
	return 0;

err_map:
	munmap(s->cpu, s->size);
err_bo:
	bo_close(fd, s->bo);
err_vm:
	if (s->own_vm)
		vm_destroy(fd, s->vm);
	return e;
}

static int session_close(struct session *s)
{
	int e = vm_bind_one(s->fd, s->vm, PT_BIND_OP_TYPE_UNMAP, 0, 0, s->va, s->size,
			    "VM_BIND_UNMAP");

	munmap(s->cpu, s->size);
	if (bo_close(s->fd, s->bo) && !e)
		e = EIO;
	if (s->own_vm && vm_destroy(s->fd, s->vm) && !e)
		e = EIO;
	return e;
}

static volatile uint32_t *session_u32(struct session *s, uint64_t off)
{
	return (volatile uint32_t *)(s->cpu + off);
}

/* Copy a command buffer into the BO; its GPU VA, or 0 if the BO is full. */
static uint64_t session_code(struct session *s, const uint64_t *words, unsigned n)
{
	uint64_t off = s->code_next, bytes = (uint64_t)n * 8;

	if (off + bytes > s->size)
		return 0;
	memcpy(s->cpu + off, words, bytes);
	__sync_synchronize();
	s->code_next = (off + bytes + 63) & ~63ull;
	return s->va + off;
}

/* GROUP_CREATE on the session's VM: `nqueues` queues of `ring_size` bytes, every core
 * present allowed (masks = the present masks, maxima = their popcounts). */
static int group_create(struct session *s, uint32_t nqueues, uint32_t ring_size,
			uint8_t priority, uint32_t *handle)
{
	struct pt_queue_create q[32];
	struct pt_group_create a = { 0 };
	uint32_t i;
	int e;

	memset(q, 0, sizeof(q));
	for (i = 0; i < nqueues && i < 32; i++) {
		q[i].priority = 1;
		q[i].ringbuf_size = ring_size;
	}
	a.queues = (struct pt_obj_array){ sizeof(q[0]), nqueues, (uint64_t)(uintptr_t)q };
	a.compute_core_mask = s->gpu.shader_present;
	a.fragment_core_mask = s->gpu.shader_present;
	a.tiler_core_mask = s->gpu.tiler_present;
	a.max_compute_cores = (uint8_t)popcount64(s->gpu.shader_present);
	a.max_fragment_cores = (uint8_t)popcount64(s->gpu.shader_present);
	a.max_tiler_cores = (uint8_t)popcount64(s->gpu.tiler_present);
	a.priority = priority;
	a.vm_id = s->vm;
	e = xioctl(s->fd, IOCTL_GROUP_CREATE, &a, "GROUP_CREATE");
	if (!e)
		*handle = a.group_handle;
	return e;
}

static int group_destroy(int fd, uint32_t handle)
{
	struct pt_group_destroy a = { .group_handle = handle };

	return xioctl(fd, IOCTL_GROUP_DESTROY, &a, "GROUP_DESTROY");
}

static int group_get_state(int fd, uint32_t handle, uint32_t *state, uint32_t *fatal_queues)
{
	struct pt_group_get_state a = { .group_handle = handle };
	int e = xioctl(fd, IOCTL_GROUP_GET_STATE, &a, "GROUP_GET_STATE");

	if (!e) {
		*state = a.state;
		if (fatal_queues)
			*fatal_queues = a.fatal_queues;
	}
	return e;
}

/* GROUP_SUBMIT of one job (the command buffer at `va`, `size` bytes) to `queue`,
 * signalling sync object `signal` (0: none) when it is done; 0 or an errno (not printed). */
static int group_submit_raw(int fd, uint32_t group, uint32_t queue, uint64_t va, uint32_t size,
			    uint32_t signal)
{
	struct pt_sync_op sync = { .flags = PT_SYNC_OP_SIGNAL | PT_SYNC_OP_HANDLE_TYPE_SYNCOBJ,
				   .handle = signal };
	struct pt_queue_submit qs = { .queue_index = queue, .stream_size = size,
				      .stream_addr = va, .latest_flush = 0,
				      .syncs = { sizeof(sync), signal ? 1 : 0,
						 (uint64_t)(uintptr_t)&sync } };
	struct pt_group_submit a = { .group_handle = group,
				     .queue_submits = { sizeof(qs), 1, (uint64_t)(uintptr_t)&qs } };

	return pt_ioctl(fd, IOCTL_GROUP_SUBMIT, &a);
}

static int group_submit(int fd, uint32_t group, uint32_t queue, uint64_t va, uint32_t size,
			uint32_t signal)
{
	int e = group_submit_raw(fd, group, queue, va, size, signal);

	if (e)
		printf("error=GROUP_SUBMIT errno=%d errname=%s msg=%s\n", e, errname(e), strerror(e));
	return e;
}

/* ---------------------------------------------------------------------------------- */
/* CS instructions (Mali v10 command streams)                                          */
/* ---------------------------------------------------------------------------------- */

/*
 * The 64-bit encodings of Mesa's genxml v10 (the same as scheduler/isa.py, which the unit
 * tests compare these with through `panthor-client cs-encode`): opcode in [63:56];
 * registers are 8-bit indices of 32-bit registers, "dN" the pair rN:rN+1.
 */
enum cs_op {
	CS_NOP = 0, CS_MOVE48 = 1, CS_MOVE32 = 2, CS_WAIT = 3, CS_ADD_IMM32 = 16,
	CS_LOAD_MULTIPLE = 20, CS_STORE_MULTIPLE = 21, CS_BRANCH = 22, CS_FLUSH_CACHE2 = 36,
	CS_SYNC_ADD32 = 37, CS_SYNC_SET32 = 38, CS_SYNC_WAIT32 = 39, CS_SYNC_ADD64 = 51,
	CS_SYNC_SET64 = 52, CS_SYNC_WAIT64 = 53,
};
enum cs_cond { CS_LE = 0, CS_GT = 1, CS_EQ = 2, CS_NE = 3, CS_LT = 4, CS_GE = 5, CS_ALWAYS = 6 };

#define CS_F(v, shift, width) (((uint64_t)(v) & ((1ull << (width)) - 1)) << (shift))
#define CS_OPC(op) CS_F(op, 56, 8)

/* MOVE48 d(dst) = imm (48 bits) */
static uint64_t cs_move48(unsigned dst, uint64_t imm)
{
	return CS_OPC(CS_MOVE48) | CS_F(dst, 48, 8) | CS_F(imm, 0, 48);
}

/* MOVE32 r(dst) = imm */
static uint64_t cs_move32(unsigned dst, uint32_t imm)
{
	return CS_OPC(CS_MOVE32) | CS_F(dst, 48, 8) | CS_F(imm, 0, 32);
}

/* WAIT for the scoreboard slots in `mask` */
static uint64_t cs_wait(unsigned mask)
{
	return CS_OPC(CS_WAIT) | CS_F(mask, 16, 16);
}

/* ADD_IMM32 r(dst) = r(src) + imm */
static uint64_t cs_add_imm32(unsigned dst, unsigned src, int32_t imm)
{
	return CS_OPC(CS_ADD_IMM32) | CS_F(dst, 48, 8) | CS_F(src, 40, 8) | CS_F((uint32_t)imm, 0, 32);
}

/* LOAD_MULTIPLE / STORE_MULTIPLE: r(base+i) <-> [d(addr) + offset + 4i] for each bit i of mask */
static uint64_t cs_ldst(enum cs_op op, unsigned base, unsigned addr, unsigned mask, int16_t offset)
{
	return CS_OPC(op) | CS_F(base, 48, 8) | CS_F(addr, 40, 8) | CS_F(mask, 16, 16) |
	       CS_F((uint16_t)offset, 0, 16);
}

/* BRANCH by `offset` instructions (from the next one) if r(value) <cond> 0 */
static uint64_t cs_branch(enum cs_cond cond, unsigned value, int16_t offset)
{
	return CS_OPC(CS_BRANCH) | CS_F(value, 40, 8) | CS_F(cond, 28, 4) | CS_F((uint16_t)offset, 0, 16);
}

/* FLUSH_CACHE2: l2/lsc 0 none, 1 clean, 3 clean+invalidate; other 0 none, 2 invalidate */
static uint64_t cs_flush_cache2(unsigned l2, unsigned lsc, unsigned other, unsigned flush_id_reg,
				unsigned wait_mask, unsigned signal_slot)
{
	return CS_OPC(CS_FLUSH_CACHE2) | CS_F(signal_slot, 48, 4) | CS_F(flush_id_reg, 40, 8) |
	       CS_F(wait_mask, 16, 16) | CS_F(other, 8, 4) | CS_F(lsc, 4, 4) | CS_F(l2, 0, 4);
}

/* SYNC_ADD/SET 32/64: [d(addr)] (+)= r(data) / d(data); scope 0 system, 2 CSG */
static uint64_t cs_sync_update(enum cs_op op, unsigned addr, unsigned data, unsigned wait_mask,
			       unsigned signal_slot, unsigned scope, unsigned error_propagate)
{
	return CS_OPC(op) | CS_F(signal_slot, 48, 4) | CS_F(addr, 40, 8) | CS_F(data, 32, 8) |
	       CS_F(wait_mask, 16, 16) | CS_F(scope, 1, 2) | CS_F(error_propagate, 0, 1);
}

/* SYNC_WAIT32/64: block until [d(addr)] <cond> r(data) / d(data) (GT or LE) */
static uint64_t cs_sync_wait(enum cs_op op, unsigned addr, unsigned data, enum cs_cond cond,
			     unsigned error_reject)
{
	return CS_OPC(op) | CS_F(addr, 40, 8) | CS_F(data, 32, 8) | CS_F(cond, 28, 4) |
	       CS_F(error_reject, 0, 1);
}

/* A command buffer being written. */
struct cs_buf {
	uint64_t w[128];
	unsigned n, overflow;
};

static void cs_emit(struct cs_buf *b, uint64_t word)
{
	if (b->n < sizeof(b->w) / sizeof(b->w[0]))
		b->w[b->n++] = word;
	else
		b->overflow = 1;
}

/* Registers the command buffers below use (the kernel's job wrapper owns r92..r95). */
enum { R_ADDR = 0, R_VAL = 2, R_CNT = 3, R_ADDR2 = 4, R_VAL2 = 6, R_FLUSH = 10 };
#define SB_ALL 0xffu

/* [va] = value (32-bit), then wait for it */
static void cs_store_value(struct cs_buf *b, uint64_t va, uint32_t value)
{
	cs_emit(b, cs_move48(R_ADDR, va));
	cs_emit(b, cs_move32(R_VAL, value));
	cs_emit(b, cs_ldst(CS_STORE_MULTIPLE, R_VAL, R_ADDR, 1, 0));
	cs_emit(b, cs_wait(SB_ALL));
}

/* Clean+invalidate L2 and load/store caches unconditionally (flush ID 0) and wait. */
static void cs_flush_all(struct cs_buf *b)
{
	cs_emit(b, cs_move32(R_FLUSH, 0));
	cs_emit(b, cs_flush_cache2(3, 3, 0, R_FLUSH, 0, 1));
	cs_emit(b, cs_wait(1u << 1));
}

/* Block until the 32-bit sync object at `va` is > 0. */
static void cs_wait_gt0(struct cs_buf *b, uint64_t va)
{
	cs_emit(b, cs_move48(R_ADDR, va));
	cs_emit(b, cs_move32(R_VAL, 0));
	cs_emit(b, cs_sync_wait(CS_SYNC_WAIT32, R_ADDR, R_VAL, CS_GT, 0));
}

/* Set the 32-bit sync object at `va` to `value` (system scope) and wait for it. */
static void cs_sync_set(struct cs_buf *b, uint64_t va, uint32_t value)
{
	cs_emit(b, cs_move48(R_ADDR, va));
	cs_emit(b, cs_move32(R_VAL, value));
	cs_emit(b, cs_sync_update(CS_SYNC_SET32, R_ADDR, R_VAL, 0, 0, 0, 0));
	cs_emit(b, cs_wait(SB_ALL));
}

/* A counted loop: r(R_CNT) = n; do r(R_CNT) -= 1 while != 0 (n >= 1). */
static void cs_spin(struct cs_buf *b, uint32_t n)
{
	cs_emit(b, cs_move32(R_CNT, n));
	cs_emit(b, cs_add_imm32(R_CNT, R_CNT, -1));
	cs_emit(b, cs_branch(CS_NE, R_CNT, -2));
}

/* One job: a command buffer, a group and queue, a sync object it signals. */
struct job {
	uint64_t va;
	uint32_t size, syncobj;
	uint64_t submit_ns;
};

static int job_prepare(struct session *s, struct cs_buf *b, struct job *j)
{
	if (b->overflow || !b->n) {
		printf("error=command_buffer msg=%s\n", b->overflow ? "too long" : "empty");
		return EINVAL;
	}
	memset(j, 0, sizeof(*j));
	j->va = session_code(s, b->w, b->n);
	j->size = b->n * 8;
	if (!j->va) {
		printf("error=command_buffer msg=no room left in the BO\n");
		return ENOSPC;
	}
	return syncobj_create(s->fd, &j->syncobj);
}

static int job_submit(struct session *s, uint32_t group, uint32_t queue, struct job *j)
{
	j->submit_ns = now_ns();
	return group_submit(s->fd, group, queue, j->va, j->size, j->syncobj);
}

/* Wait for the job's sync object (up to timeout_ms) and report on it under `name`:
 * `<name>.signalled=0|1 <name>.fence_status=N <name>.latency_us=N`. The fence status
 * goes to *status (1 done, < 0 error); returns 0 or an errno (ETIME: not signalled). */
static int job_wait(struct session *s, struct job *j, const char *name, uint32_t timeout_ms,
		    int32_t *status)
{
	uint64_t ts = 0, t;
	int32_t st = 0;
	int e = syncobj_wait(s->fd, &j->syncobj, 1, (uint64_t)timeout_ms * 1000000ull);

	t = now_ns();
	printf("%s.signalled=%d\n", name, e == 0);
	if (e) {
		if (status)
			*status = 0;
		return e;
	}
	if ((e = syncobj_fence_status(s->fd, j->syncobj, &st, &ts)))
		return e;
	if (!ts)
		ts = t;
	printf("%s.fence_status=%d\n", name, st);
	printf("%s.latency_us=%" PRIu64 "\n", name, (ts - j->submit_ns) / 1000);
	if (status)
		*status = st;
	return 0;
}

static void job_release(struct session *s, struct job *j)
{
	if (j->syncobj)
		syncobj_destroy(s->fd, j->syncobj);
	j->syncobj = 0;
}

/* Create a group, run the deadbeef store job on it, check and destroy it: the
 * smallest end-to-end job, used by job-store and to show recovery after faults. */
static int run_store_job(struct session *s, const char *name, uint64_t data_off, uint32_t value)
{
	struct cs_buf b = { .n = 0 };
	struct job j;
	uint32_t group = 0, state = 0, got;
	int32_t st = 0;
	char key[64];
	int e;

	*session_u32(s, data_off) = 0;
	cs_store_value(&b, s->va + data_off, value);
	cs_flush_all(&b);
	if ((e = job_prepare(s, &b, &j)))
		return e;
	if ((e = group_create(s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &group)))
		goto out_job;
	printf("%s.group=%u\n", name, group);
	printf("%s.stream_va=0x%" PRIx64 "\n", name, j.va);
	printf("%s.stream_size=%u\n", name, j.size);
	if ((e = job_submit(s, group, 0, &j)))
		goto out_group;
	snprintf(key, sizeof(key), "%s", name);
	if ((e = job_wait(s, &j, key, 10000, &st)))
		goto out_group;
	got = *session_u32(s, data_off);
	printf("%s.store_va=0x%" PRIx64 "\n", name, s->va + data_off);
	printf("%s.value=0x%08x\n", name, got);
	if ((e = group_get_state(s->fd, group, &state, NULL)))
		goto out_group;
	printf("%s.group_state=0x%x\n", name, state);
	if (st != 1 || got != value || state != 0)
		e = EIO;
out_group:
	{
		int e2 = group_destroy(s->fd, group);
		e = e ? e : e2;
	}
out_job:
	job_release(s, &j);
	printf("%s.ok=%d\n", name, e == 0);
	return e;
}

/* ---------------------------------------------------------------------------------- */
/* vm-bind                                                                             */
/* ---------------------------------------------------------------------------------- */

static int cmd_vm_bind(int fd, int argc, char **argv)
{
	uint64_t size = 0x10000, va = 0x1000000, pattern = 0xC0DE0000, hold = 0;
	uint64_t bo_size, mmap_off = 0, user_va_range = 0;
	uint32_t vm_id = 0, bo = 0, state = 0, words, i, job_group = 0;
	volatile uint32_t *cpu;
	struct session js;
	int e, bad = 0, with_job = 0, have_js = 0;

	for (i = 0; i < (uint32_t)argc; i++) {
		uint64_t *dst;

		if (!strcmp(argv[i], "--with-job")) {
			with_job = 1;
			continue;
		}
		dst = !strcmp(argv[i], "--size") ? &size :
				!strcmp(argv[i], "--va") ? &va :
				!strcmp(argv[i], "--pattern") ? &pattern :
				!strcmp(argv[i], "--hold") ? &hold : NULL;
		if (!dst || i + 1 >= (uint32_t)argc || parse_u64(argv[i + 1], dst)) {
			fprintf(stderr, "vm-bind: bad argument %s\n", argv[i]);
			return EINVAL;
		}
		i++;
	}
	if (!size || pattern > 0xffffffffull) {
		fprintf(stderr, "vm-bind: size must be > 0 and pattern 32-bit\n");
		return EINVAL;
	}

	if ((e = vm_create(fd, &vm_id, &user_va_range)))
		return e;
	printf("vm_id=%u\n", vm_id);
	printf("user_va_range=0x%" PRIx64 "\n", user_va_range);

	bo_size = size;
	if ((e = bo_create(fd, &bo_size, 0, 0, &bo)))
		goto out_vm;
	printf("bo_handle=%u\n", bo);
	printf("bo_size=0x%" PRIx64 "\n", bo_size);

	cpu = bo_map(fd, bo, bo_size, &mmap_off);
	if (cpu == MAP_FAILED) {
		e = EIO;
		goto out_bo;
	}
	printf("mmap_offset=0x%" PRIx64 "\n", mmap_off);

	if ((e = vm_bind_one(fd, vm_id, PT_BIND_OP_TYPE_MAP, bo, 0, va, bo_size, "VM_BIND_MAP")))
		goto out_unmap_cpu;

	/* The CPU write the GPU side must see at `va`: word i = pattern + i. */
	words = (uint32_t)(bo_size / 4);
	for (i = 0; i < words; i++)
		cpu[i] = (uint32_t)pattern + i;
	__sync_synchronize();
	for (i = 0; i < words; i++)
		if (cpu[i] != (uint32_t)pattern + i)
			bad++;
	printf("va=0x%" PRIx64 " size=0x%" PRIx64 " pattern=0x%08" PRIx64 "\n", va, bo_size,
	       pattern);
	printf("fill=pattern_plus_word_index words=%u\n", words);
	printf("readback=%s\n", bad ? "mismatch" : "ok");

	if ((e = vm_get_state(fd, vm_id, &state)))
		goto out_unbind;
	printf("vm_state=%u\n", state);

	/* One job on this VM, so it gets a GPU address space (panthor programs an AS only
	 * for VMs with scheduled groups): it reads the first four words of the buffer
	 * through the GPU MMU and stores them into a scratch BO that we check. The group
	 * stays alive through the hold. */
	if (with_job && !e) {
		struct cs_buf b = { .n = 0 };
		uint64_t scratch_va = (va + bo_size + 0x1fffff) & ~0x1fffffull;
		struct job j;
		int32_t st = 0;
		uint32_t k, diff = 0;

		if ((e = session_open(fd, &js, vm_id, scratch_va, 0x40000)))
			goto out_unbind;
		have_js = 1;
		cs_emit(&b, cs_move48(R_ADDR, va));
		cs_emit(&b, cs_ldst(CS_LOAD_MULTIPLE, 2, R_ADDR, 0xf, 0));
		cs_emit(&b, cs_wait(SB_ALL));
		cs_emit(&b, cs_move48(8, scratch_va + 0x100));
		cs_emit(&b, cs_ldst(CS_STORE_MULTIPLE, 2, 8, 0xf, 0));
		cs_emit(&b, cs_wait(SB_ALL));
		cs_flush_all(&b);
		if ((e = job_prepare(&js, &b, &j)))
			goto out_unbind;
		if (!(e = group_create(&js, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &job_group)) &&
		    !(e = job_submit(&js, job_group, 0, &j)) &&
		    !(e = job_wait(&js, &j, "job", 10000, &st))) {
			for (k = 0; k < 4; k++)
				diff += *session_u32(&js, 0x100 + 4 * k) != (uint32_t)pattern + k;
			printf("job.gpu_read=%s\n", diff ? "mismatch" : "ok");
			printf("job.word0=0x%08x\n", *session_u32(&js, 0x100));
			if (st != 1 || diff)
				e = EIO;
		}
		job_release(&js, &j);
		if (e)
			goto out_unbind;
	}

	if (hold) {
		printf("holding=%" PRIu64 "\n", hold);
		fflush(stdout);
		sleep_s((double)hold);
		printf("held=%" PRIu64 "\n", hold);
	}

out_unbind:
	if (job_group) {
		int e2 = group_destroy(fd, job_group);
		e = e ? e : e2;
	}
	if (have_js) {
		int e2 = session_close(&js);
		e = e ? e : e2;
	}
	{
		int e2 = vm_bind_one(fd, vm_id, PT_BIND_OP_TYPE_UNMAP, 0, 0, va, bo_size,
				     "VM_BIND_UNMAP");
		if (!e2)
			printf("unmapped=0x%" PRIx64 "\n", va);
		e = e ? e : e2;
	}
out_unmap_cpu:
	munmap((void *)cpu, bo_size);
out_bo:
	{
		int e2 = bo_close(fd, bo);
		e = e ? e : e2;
	}
out_vm:
	{
		int e2 = vm_destroy(fd, vm_id);
		if (!e2)
			printf("vm_destroyed=%u\n", vm_id);
		e = e ? e : e2;
	}
	if (!e && bad)
		e = EIO;
	return e;
}

/* ---------------------------------------------------------------------------------- */
/* bad-ioctls                                                                          */
/* ---------------------------------------------------------------------------------- */

struct bad_ctx {
	int fd;
	uint32_t vm_id;      /* a valid VM of this file */
	uint32_t bo;         /* a valid, mappable 64 KiB BO */
	uint32_t bo_no_mmap; /* a valid BO created with NO_MMAP */
};

#define UNKNOWN_ID 0x7777u

static int pt_ioctl_bind(struct bad_ctx *c, uint32_t flags, uint32_t bo, uint64_t va,
			 uint64_t size)
{
	struct pt_vm_bind_op op = { .flags = flags, .bo_handle = bo, .va = va, .size = size };
	struct pt_vm_bind a = { .vm_id = c->vm_id,
				.ops = { sizeof(op), 1, (uint64_t)(uintptr_t)&op } };
	return pt_ioctl(c->fd, IOCTL_VM_BIND, &a);
}

static int bad_query_type(struct bad_ctx *c)
{
	struct pt_dev_query q = { .type = 0x55 };
	return pt_ioctl(c->fd, IOCTL_DEV_QUERY, &q);
}

static int bad_query_short(struct bad_ctx *c)
{
	uint32_t small[2];
	struct pt_dev_query q = { .type = PT_QUERY_GPU_INFO, .size = sizeof(small),
				  .pointer = (uint64_t)(uintptr_t)small };
	return pt_ioctl(c->fd, IOCTL_DEV_QUERY, &q);
}

static int bad_vm_create_flags(struct bad_ctx *c)
{
	struct pt_vm_create a = { .flags = 1 };
	int e = pt_ioctl(c->fd, IOCTL_VM_CREATE, &a);
	if (!e)
		vm_destroy(c->fd, a.id);
	return e;
}

static int bad_vm_destroy_unknown(struct bad_ctx *c)
{
	struct pt_vm_destroy a = { .id = UNKNOWN_ID };
	return pt_ioctl(c->fd, IOCTL_VM_DESTROY, &a);
}

static int bad_vm_destroy_pad(struct bad_ctx *c)
{
	struct pt_vm_destroy a = { .id = c->vm_id, .pad = 1 };
	return pt_ioctl(c->fd, IOCTL_VM_DESTROY, &a);
}

static int bad_vm_bind_unknown_vm(struct bad_ctx *c)
{
	struct pt_vm_bind_op op = { .flags = PT_BIND_OP_TYPE_MAP, .bo_handle = c->bo,
				    .va = 0x1000000, .size = 0x10000 };
	struct pt_vm_bind a = { .vm_id = UNKNOWN_ID,
				.ops = { sizeof(op), 1, (uint64_t)(uintptr_t)&op } };
	return pt_ioctl(c->fd, IOCTL_VM_BIND, &a);
}

static int bad_vm_bind_unaligned_va(struct bad_ctx *c)
{
	return pt_ioctl_bind(c, PT_BIND_OP_TYPE_MAP, c->bo, 0x1000800, 0x10000);
}

static int bad_vm_bind_unknown_bo(struct bad_ctx *c)
{
	return pt_ioctl_bind(c, PT_BIND_OP_TYPE_MAP, UNKNOWN_ID, 0x1000000, 0x10000);
}

static int bad_vm_bind_past_bo_end(struct bad_ctx *c)
{
	return pt_ioctl_bind(c, PT_BIND_OP_TYPE_MAP, c->bo, 0x1000000, 0x20000);
}

static int bad_vm_bind_unmap_with_bo(struct bad_ctx *c)
{
	return pt_ioctl_bind(c, PT_BIND_OP_TYPE_UNMAP, c->bo, 0x1000000, 0x10000);
}

static int bad_vm_bind_bad_type(struct bad_ctx *c)
{
	return pt_ioctl_bind(c, 7u << 28, 0, 0x1000000, 0x10000);
}

static int bad_vm_bind_sync_with_syncs(struct bad_ctx *c)
{
	struct pt_sync_op s = { 0 };
	struct pt_vm_bind_op op = { .flags = PT_BIND_OP_TYPE_MAP, .bo_handle = c->bo,
				    .va = 0x1000000, .size = 0x10000,
				    .syncs = { sizeof(s), 1, (uint64_t)(uintptr_t)&s } };
	struct pt_vm_bind a = { .vm_id = c->vm_id,
				.ops = { sizeof(op), 1, (uint64_t)(uintptr_t)&op } };
	return pt_ioctl(c->fd, IOCTL_VM_BIND, &a);
}

static int bad_vm_get_state_unknown(struct bad_ctx *c)
{
	struct pt_vm_get_state a = { .vm_id = UNKNOWN_ID };
	return pt_ioctl(c->fd, IOCTL_VM_GET_STATE, &a);
}

static int bad_bo_create_zero(struct bad_ctx *c)
{
	struct pt_bo_create a = { .size = 0 };
	return pt_ioctl(c->fd, IOCTL_BO_CREATE, &a);
}

static int bad_bo_create_flags(struct bad_ctx *c)
{
	struct pt_bo_create a = { .size = 0x1000, .flags = 0x80 };
	return pt_ioctl(c->fd, IOCTL_BO_CREATE, &a);
}

static int bad_bo_create_unknown_vm(struct bad_ctx *c)
{
	struct pt_bo_create a = { .size = 0x1000, .exclusive_vm_id = UNKNOWN_ID };
	return pt_ioctl(c->fd, IOCTL_BO_CREATE, &a);
}

static int bad_bo_mmap_unknown(struct bad_ctx *c)
{
	struct pt_bo_mmap_offset a = { .handle = UNKNOWN_ID };
	return pt_ioctl(c->fd, IOCTL_BO_MMAP_OFFSET, &a);
}

static int bad_bo_mmap_pad(struct bad_ctx *c)
{
	struct pt_bo_mmap_offset a = { .handle = c->bo, .pad = 1 };
	return pt_ioctl(c->fd, IOCTL_BO_MMAP_OFFSET, &a);
}

static int bad_bo_mmap_no_mmap(struct bad_ctx *c)
{
	struct pt_bo_mmap_offset a = { .handle = c->bo_no_mmap };
	return pt_ioctl(c->fd, IOCTL_BO_MMAP_OFFSET, &a);
}

static int bad_group_get_state_unknown(struct bad_ctx *c)
{
	struct pt_group_get_state a = { .group_handle = UNKNOWN_ID };
	return pt_ioctl(c->fd, IOCTL_GROUP_GET_STATE, &a);
}

static int bad_ioctl_number(struct bad_ctx *c)
{
	struct pt_vm_destroy a = { 0 };
	return pt_ioctl(c->fd, PT_IOCTL(0x3f, struct pt_vm_destroy), &a);
}

/* Each case with the errno panthor returns for it (source: panthor_drv.c, panthor_mmu.c,
 * panthor_sched.c and drm_ioctl.c of the guest kernel). */
static const struct bad_case {
	const char *name;
	int expect;
	int (*run)(struct bad_ctx *c);
} bad_cases[] = {
	{ "dev_query_unknown_type", EINVAL, bad_query_type },
	{ "dev_query_gpu_info_too_small", EINVAL, bad_query_short },
	{ "vm_create_nonzero_flags", EINVAL, bad_vm_create_flags },
	{ "vm_destroy_unknown_vm", EINVAL, bad_vm_destroy_unknown },
	{ "vm_destroy_nonzero_pad", EINVAL, bad_vm_destroy_pad },
	{ "vm_bind_unknown_vm", EINVAL, bad_vm_bind_unknown_vm },
	{ "vm_bind_unaligned_va", EINVAL, bad_vm_bind_unaligned_va },
	{ "vm_bind_unknown_bo", EINVAL, bad_vm_bind_unknown_bo },
	{ "vm_bind_past_bo_end", EINVAL, bad_vm_bind_past_bo_end },
	{ "vm_bind_unmap_with_bo", EINVAL, bad_vm_bind_unmap_with_bo },
	{ "vm_bind_unknown_op_type", EINVAL, bad_vm_bind_bad_type },
	{ "vm_bind_sync_op_with_syncs", EINVAL, bad_vm_bind_sync_with_syncs },
	{ "vm_get_state_unknown_vm", EINVAL, bad_vm_get_state_unknown },
	{ "bo_create_zero_size", EINVAL, bad_bo_create_zero },
	{ "bo_create_unknown_flags", EINVAL, bad_bo_create_flags },
	{ "bo_create_unknown_exclusive_vm", EINVAL, bad_bo_create_unknown_vm },
	{ "bo_mmap_offset_unknown_bo", ENOENT, bad_bo_mmap_unknown },
	{ "bo_mmap_offset_nonzero_pad", EINVAL, bad_bo_mmap_pad },
	{ "bo_mmap_offset_no_mmap_bo", EPERM, bad_bo_mmap_no_mmap },
	{ "group_get_state_unknown_group", EINVAL, bad_group_get_state_unknown },
	{ "ioctl_number_out_of_range", EINVAL, bad_ioctl_number },
};

static int cmd_bad_ioctls(int fd, int argc, char **argv)
{
	struct bad_ctx c = { .fd = fd };
	uint64_t size = 0x10000, size2 = 0x10000;
	unsigned i, failed = 0, n = sizeof(bad_cases) / sizeof(bad_cases[0]);
	int e;

	(void)argc;
	(void)argv;
	if ((e = vm_create(fd, &c.vm_id, NULL)))
		return e;
	if ((e = bo_create(fd, &size, 0, 0, &c.bo)))
		return e;
	if ((e = bo_create(fd, &size2, PT_BO_NO_MMAP, 0, &c.bo_no_mmap)))
		return e;

	for (i = 0; i < n; i++) {
		int got = bad_cases[i].run(&c);
		int ok = got == bad_cases[i].expect;

		printf("case=%s expect=%s got=%s ok=%d\n", bad_cases[i].name,
		       errname(bad_cases[i].expect), errname(got), ok);
		failed += !ok;
	}
	printf("bad_ioctls_cases=%u\n", n);
	printf("bad_ioctls_failed=%u\n", failed);

	/* The valid objects must still be intact after all that. */
	e = bo_close(fd, c.bo_no_mmap);
	if (bo_close(fd, c.bo))
		e = EIO;
	if (vm_destroy(fd, c.vm_id))
		e = EIO;
	return failed ? EINVAL : e;
}

/* ---------------------------------------------------------------------------------- */
/* job commands                                                                        */
/* ---------------------------------------------------------------------------------- */

/* Parse `--name value` options into u64s; positional arguments go to `pos` (max npos). */
struct opt {
	const char *name;
	uint64_t *value;
};

static int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts,
		      uint64_t *pos, unsigned npos, unsigned *got_pos)
{
	unsigned p = 0;
	int i;

	for (i = 0; i < argc; i++) {
		const struct opt *o;

		if (strncmp(argv[i], "--", 2)) {
			if (p >= npos || parse_u64(argv[i], &pos[p])) {
				fprintf(stderr, "%s: bad argument %s\n", cmd, argv[i]);
				return EINVAL;
			}
			p++;
			continue;
		}
		for (o = opts; o && o->name; o++)
			if (!strcmp(argv[i], o->name))
				break;
		if (!o || !o->name || i + 1 >= argc || parse_u64(argv[i + 1], o->value)) {
			fprintf(stderr, "%s: bad argument %s\n", cmd, argv[i]);
			return EINVAL;
		}
		i++;
	}
	if (got_pos)
		*got_pos = p;
	return 0;
}

static int finish(struct session *s, int e)
{
	int e2 = session_close(s);

	return e ? e : e2;
}

/* job-store: one job MOVE48/MOVE32/STORE_MULTIPLE/WAIT/FLUSH_CACHE2 stores 0xdeadbeef. */
static int cmd_job_store(int fd, int argc, char **argv)
{
	struct session s;
	int e;

	if ((e = parse_opts("job-store", argc, argv, NULL, NULL, 0, NULL)))
		return e;
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	printf("vm_id=%u\n", s.vm);
	return finish(&s, run_store_job(&s, "store", 0x40, 0xdeadbeef));
}

/* job-loop N: a counted loop (ADD_IMM32, BRANCH NE) N times, then store the count. */
static int cmd_job_loop(int fd, int argc, char **argv)
{
	uint64_t n = 1000;
	unsigned npos = 0;
	struct cs_buf b = { .n = 0 };
	struct session s;
	struct job j;
	uint32_t group = 0, got = 0, state = 0;
	int32_t st = 0;
	int e;

	if ((e = parse_opts("job-loop", argc, argv, NULL, &n, 1, &npos)))
		return e;
	if (!n || n > 0x7fffffff) {
		fprintf(stderr, "job-loop: N must be 1..2^31-1\n");
		return EINVAL;
	}
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	*session_u32(&s, 0x80) = 0xffffffff;
	cs_emit(&b, cs_move32(1, 0));
	cs_emit(&b, cs_move32(R_CNT, (uint32_t)n));
	cs_emit(&b, cs_add_imm32(1, 1, 1));              /* loop: r1 += 1 */
	cs_emit(&b, cs_add_imm32(R_CNT, R_CNT, -1));     /*       r3 -= 1 */
	cs_emit(&b, cs_branch(CS_NE, R_CNT, -3));        /*       while r3 != 0 */
	cs_emit(&b, cs_move48(R_ADDR2, s.va + 0x80));
	cs_emit(&b, cs_ldst(CS_STORE_MULTIPLE, 1, R_ADDR2, 1, 0));
	cs_emit(&b, cs_wait(SB_ALL));
	cs_flush_all(&b);
	if ((e = job_prepare(&s, &b, &j)))
		return finish(&s, e);
	if ((e = group_create(&s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &group)))
		goto out_job;
	printf("loop.n=%" PRIu64 "\n", n);
	if ((e = job_submit(&s, group, 0, &j)) || (e = job_wait(&s, &j, "loop", 20000, &st)))
		goto out_group;
	got = *session_u32(&s, 0x80);
	printf("loop.count=%u\n", got);
	if ((e = group_get_state(fd, group, &state, NULL)))
		goto out_group;
	printf("loop.group_state=0x%x\n", state);
	if (st != 1 || got != n || state)
		e = EIO;
out_group:
	{
		int e2 = group_destroy(fd, group);
		e = e ? e : e2;
	}
out_job:
	job_release(&s, &j);
	return finish(&s, e);
}

/*
 * One SYNC_SET/SYNC_WAIT ordering: the waiter (queue `wq` of group `wg`) is submitted
 * first and blocks on the sync object until the signaller (queue `sq` of group `sg`)
 * has stored `marker` and then set the sync object. The waiter stores marker + 1 of
 * what it loaded, which proves it ran after the signaller's store.
 */
static int sync_chain(struct session *s, const char *name, uint32_t wg, uint32_t wq,
		      uint32_t sg, uint32_t sq, uint64_t sync_off, uint64_t data_off,
		      uint32_t marker, uint32_t delay_ms)
{
	struct cs_buf w = { .n = 0 }, sig = { .n = 0 };
	struct job jw, js;
	uint64_t sync_va = s->va + sync_off, data_va = s->va + data_off;
	int32_t stw = 0, sts = 0;
	uint64_t tw = 0, ts = 0;
	uint32_t seen, blocked_value;
	int e, early;

	*session_u32(s, sync_off) = 0;
	*session_u32(s, sync_off + 4) = 0;
	*session_u32(s, data_off) = 0;
	*session_u32(s, data_off + 4) = 0;

	/* waiter: wait sync > 0; r6 = [data]; r6 += 1; [data + 4] = r6 */
	cs_wait_gt0(&w, sync_va);
	cs_emit(&w, cs_move48(R_ADDR2, data_va));
	cs_emit(&w, cs_ldst(CS_LOAD_MULTIPLE, R_VAL2, R_ADDR2, 1, 0));
	cs_emit(&w, cs_wait(SB_ALL));
	cs_emit(&w, cs_add_imm32(R_VAL2, R_VAL2, 1));
	cs_emit(&w, cs_ldst(CS_STORE_MULTIPLE, R_VAL2, R_ADDR2, 1, 4));
	cs_emit(&w, cs_wait(SB_ALL));
	cs_flush_all(&w);
	/* signaller: [data] = marker; sync = 1 */
	cs_store_value(&sig, data_va, marker);
	cs_sync_set(&sig, sync_va, 1);
	cs_flush_all(&sig);

	if ((e = job_prepare(s, &w, &jw)))
		return e;
	if ((e = job_prepare(s, &sig, &js))) {
		job_release(s, &jw);
		return e;
	}
	if ((e = job_submit(s, wg, wq, &jw)))
		goto out;
	sleep_s(delay_ms / 1000.0);
	/* The waiter must still be blocked: not signalled, nothing stored. */
	early = syncobj_wait(s->fd, &jw.syncobj, 1, 0) == 0;
	blocked_value = *session_u32(s, data_off + 4);
	printf("%s.waiter_blocked=%d\n", name, !early && blocked_value == 0);
	if ((e = job_submit(s, sg, sq, &js)))
		goto out;
	{
		char key[64];

		snprintf(key, sizeof(key), "%s.signaller", name);
		if ((e = job_wait(s, &js, key, 10000, &sts)))
			goto out;
		snprintf(key, sizeof(key), "%s.waiter", name);
		if ((e = job_wait(s, &jw, key, 10000, &stw)))
			goto out;
	}
	syncobj_fence_status(s->fd, jw.syncobj, &stw, &tw);
	syncobj_fence_status(s->fd, js.syncobj, &sts, &ts);
	seen = *session_u32(s, data_off + 4);
	printf("%s.marker=0x%x\n", name, *session_u32(s, data_off));
	printf("%s.waiter_saw=0x%x\n", name, seen);
	printf("%s.sync_value=%u\n", name, *session_u32(s, sync_off));
	printf("%s.waiter_done_ts_minus_signaller_us=%" PRId64 "\n", name,
	       ((int64_t)tw - (int64_t)ts) / 1000);
	if (early || blocked_value || stw != 1 || sts != 1 || seen != marker + 1)
		e = EIO;
	printf("%s.order=%s\n", name, e ? "wrong" : "ok");
out:
	job_release(s, &jw);
	job_release(s, &js);
	return e;
}

/* job-sync-chain: SYNC_SET/SYNC_WAIT order two queues of one group, then two groups. */
static int cmd_job_sync_chain(int fd, int argc, char **argv)
{
	uint64_t delay_ms = 300;
	const struct opt opts[] = { { "--delay-ms", &delay_ms }, { NULL, NULL } };
	struct session s;
	uint32_t g2 = 0, ga = 0, gb = 0, state;
	int e, e2;

	if ((e = parse_opts("job-sync-chain", argc, argv, opts, NULL, 0, NULL)))
		return e;
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	/* two queues of one group: queue 1 waits, queue 0 signals */
	if ((e = group_create(&s, 2, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &g2)))
		return finish(&s, e);
	printf("queues.group=%u\n", g2);
	e = sync_chain(&s, "queues", g2, 1, g2, 0, SYNC_OFF, 0x100, 0x1111, (uint32_t)delay_ms);
	if (!e && !(e = group_get_state(fd, g2, &state, NULL))) {
		printf("queues.group_state=0x%x\n", state);
		e = state ? EIO : 0;
	}
	e2 = group_destroy(fd, g2);
	e = e ? e : e2;
	if (e)
		return finish(&s, e);

	/* two groups: group A waits, group B signals */
	if ((e = group_create(&s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &ga)))
		return finish(&s, e);
	if ((e = group_create(&s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &gb))) {
		group_destroy(fd, ga);
		return finish(&s, e);
	}
	printf("groups.waiter_group=%u\n", ga);
	printf("groups.signaller_group=%u\n", gb);
	e = sync_chain(&s, "groups", ga, 0, gb, 0, SYNC_OFF + 0x20, 0x200, 0x2222,
		       (uint32_t)delay_ms);
	if (!e && !(e = group_get_state(fd, ga, &state, NULL)) && state)
		e = EIO;
	if (!e && !(e = group_get_state(fd, gb, &state, NULL)) && state)
		e = EIO;
	e2 = group_destroy(fd, ga);
	e = e ? e : e2;
	e2 = group_destroy(fd, gb);
	e = e ? e : e2;
	return finish(&s, e);
}

/*
 * groups N: N groups at once (more than the CSG slots), each with one job that waits
 * for a release sync object, spins a while and stores its index; one more group
 * releases them all. The driver must rotate them through the slots (SUSPEND/RESUME).
 */
#define MAX_GROUPS 100

/* One job from `b` and a one-queue group to run it; *prepared and *created count what was
 * made, so the caller's cleanup releases exactly that. */
static int group_job_prepare(struct session *s, struct cs_buf *b, uint8_t priority,
			     struct job *j, uint32_t *group, unsigned *prepared, unsigned *created)
{
	int e = job_prepare(s, b, j);

	if (e)
		return e;
	(*prepared)++;
	if ((e = group_create(s, 1, 0x1000, priority, group)))
		return e;
	(*created)++;
	return 0;
}

static int cmd_groups(int fd, int argc, char **argv)
{
	uint64_t n = 20, spin = 2000, release = 1, delay_ms = 300;
	const struct opt opts[] = { { "--spin", &spin }, { "--release", &release },
				    { "--delay-ms", &delay_ms }, { NULL, NULL } };
	uint32_t groups[MAX_GROUPS + 1], syncs[MAX_GROUPS + 1], state, fq;
	struct job jobs[MAX_GROUPS + 1];
	uint64_t t0, t1, release_va;
	unsigned npos, i, created = 0, prepared = 0, right = 0, bad_state = 0, bad_fence = 0;
	struct session s;
	int e = 0, e2;

	if ((e = parse_opts("groups", argc, argv, opts, &n, 1, &npos)))
		return e;
	if (!n || n > MAX_GROUPS) {
		fprintf(stderr, "groups: N must be 1..%d\n", MAX_GROUPS);
		return EINVAL;
	}
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	release_va = s.va + SYNC_OFF;
	printf("groups=%" PRIu64 "\n", n);
	printf("csg_slots=%u\n", s.csif.csg_slot_count);
	printf("spin=%" PRIu64 " release=%" PRIu64 "\n", spin, release);

	for (i = 0; i <= n; i++) {
		struct cs_buf b = { .n = 0 };

		if (i < n) {
			*session_u32(&s, 4 * i) = 0;
			if (release)
				cs_wait_gt0(&b, release_va);
			if (spin)
				cs_spin(&b, (uint32_t)spin);
			cs_store_value(&b, s.va + 4 * i, 0x6000 + i);
			cs_flush_all(&b);
		} else {    /* the releaser */
			cs_sync_set(&b, release_va, 1);
			cs_flush_all(&b);
		}
		if ((e = group_job_prepare(&s, &b, PT_GROUP_PRIORITY_MEDIUM, &jobs[i], &groups[i],
					   &prepared, &created)))
			goto out;
		syncs[i] = jobs[i].syncobj;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++)
		if ((e = job_submit(&s, groups[i], 0, &jobs[i])))
			goto out;
	if (release) {
		sleep_s(delay_ms / 1000.0);
		/* nobody can have finished before the release */
		for (i = 0; i < n; i++)
			right += *session_u32(&s, 4 * i) != 0;
		printf("finished_before_release=%u\n", right);
		right = 0;
	}
	if ((e = job_submit(&s, groups[n], 0, &jobs[n])))
		goto out;
	e = syncobj_wait(fd, syncs, (uint32_t)n + 1, 60000ull * 1000000ull);
	t1 = now_ns();
	printf("all_signalled=%d\n", e == 0);
	if (e)
		goto out;
	printf("elapsed_ms=%" PRIu64 "\n", (t1 - t0) / 1000000);
	for (i = 0; i <= n; i++) {
		int32_t st = 0;

		if (i < n && *session_u32(&s, 4 * i) == 0x6000 + i)
			right++;
		else if (i < n)
			printf("wrong.%u=0x%x\n", i, *session_u32(&s, 4 * i));
		if (syncobj_fence_status(fd, syncs[i], &st, NULL) || st != 1)
			bad_fence++;
		if (group_get_state(fd, groups[i], &state, &fq) || state)
			bad_state++;
	}
	printf("results_right=%u\n", right);
	printf("fences_bad=%u\n", bad_fence);
	printf("group_states_bad=%u\n", bad_state);
	if (right != n || bad_fence || bad_state)
		e = EIO;
out:
	for (i = 0; i < created; i++) {
		e2 = group_destroy(fd, groups[i]);
		e = e ? e : e2;
	}
	for (i = 0; i < prepared; i++)
		job_release(&s, &jobs[i]);
	return finish(&s, e);
}

/*
 * loops: N groups, each one counted loop of ITER iterations (ADD_IMM32/BRANCH, about
 * 3 * ITER instructions) storing its count, submitted together at one priority; with
 * --rt-after-ms T one more group at REALTIME priority is submitted T ms later. Every
 * count must be exact; each group's fence time (since the first submit) is printed, and
 * `rt_first=1` when the real-time group finished before every other group.
 */
static void cs_counted_loop(struct cs_buf *b, uint64_t va, uint32_t iter)
{
	cs_emit(b, cs_move32(1, 0));
	cs_emit(b, cs_move32(R_CNT, iter));
	cs_emit(b, cs_add_imm32(1, 1, 1));              /* loop: r1 += 1 */
	cs_emit(b, cs_add_imm32(R_CNT, R_CNT, -1));     /*       r3 -= 1 */
	cs_emit(b, cs_branch(CS_NE, R_CNT, -3));        /*       while r3 != 0 */
	cs_emit(b, cs_move48(R_ADDR2, va));
	cs_emit(b, cs_ldst(CS_STORE_MULTIPLE, 1, R_ADDR2, 1, 0));
	cs_emit(b, cs_wait(SB_ALL));
	cs_flush_all(b);
}

static int cmd_loops(int fd, int argc, char **argv)
{
	uint64_t pos[2] = { 9, 100000 }, rt_after_ms = 0, prio = PT_GROUP_PRIORITY_LOW;
	uint64_t timeout_ms = 120000;
	const struct opt opts[] = { { "--rt-after-ms", &rt_after_ms }, { "--priority", &prio },
				    { "--timeout-ms", &timeout_ms }, { NULL, NULL } };
	uint32_t groups[MAX_GROUPS + 1], syncs[MAX_GROUPS + 1], state;
	uint64_t t0, done[MAX_GROUPS + 1];
	struct job jobs[MAX_GROUPS + 1];
	unsigned npos, i, n, total, created = 0, prepared = 0, right = 0, bad = 0, rt_first = 1;
	struct session s;
	int e = 0, e2;

	if ((e = parse_opts("loops", argc, argv, opts, pos, 2, &npos)))
		return e;
	n = (unsigned)pos[0];
	if (!n || n > MAX_GROUPS || !pos[1] || pos[1] > 0x7fffffff || prio > PT_GROUP_PRIORITY_HIGH) {
		fprintf(stderr, "loops: N must be 1..%d, ITER 1..2^31-1, --priority 0..2\n", MAX_GROUPS);
		return EINVAL;
	}
	total = n + (rt_after_ms ? 1 : 0);
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	printf("loops=%u iter=%" PRIu64 " priority=%" PRIu64 " rt=%d\n", n, pos[1], prio,
	       rt_after_ms != 0);
	for (i = 0; i < total; i++) {
		struct cs_buf b = { .n = 0 };
		uint8_t pr = i < n ? (uint8_t)prio : PT_GROUP_PRIORITY_REALTIME;

		*session_u32(&s, 4 * i) = 0;
		cs_counted_loop(&b, s.va + 4 * i, (uint32_t)pos[1]);
		if ((e = group_job_prepare(&s, &b, pr, &jobs[i], &groups[i], &prepared, &created)))
			goto out;
		syncs[i] = jobs[i].syncobj;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++)
		if ((e = job_submit(&s, groups[i], 0, &jobs[i])))
			goto out;
	if (rt_after_ms) {
		sleep_s(rt_after_ms / 1000.0);
		if ((e = job_submit(&s, groups[n], 0, &jobs[n])))
			goto out;
	}
	e = syncobj_wait(fd, syncs, total, timeout_ms * 1000000ull);
	printf("all_signalled=%d\n", e == 0);
	printf("elapsed_ms=%" PRIu64 "\n", (now_ns() - t0) / 1000000);
	if (e)
		goto out;
	for (i = 0; i < total; i++) {
		int32_t st = 0;
		uint32_t got = *session_u32(&s, 4 * i);
		const char *who = i < n ? "group" : "rt";

		done[i] = 0;
		if (syncobj_fence_status(fd, syncs[i], &st, &done[i]) || st != 1)
			bad++;
		if (group_get_state(fd, groups[i], &state, NULL) || state)
			bad++;
		right += got == pos[1];
		printf("%s.%u.count=%u\n", who, i, got);
		printf("%s.%u.done_ms=%" PRId64 "\n", who, i,
		       done[i] ? (int64_t)(done[i] - t0) / 1000000 : -1);
	}
	if (rt_after_ms) {
		for (i = 0; i < n; i++)
			if (done[i] <= done[n])
				rt_first = 0;
		printf("rt_first=%u\n", rt_first);
	}
	printf("counts_right=%u\n", right);
	printf("bad=%u\n", bad);
	if (right != total || bad)
		e = EIO;
out:
	for (i = 0; i < created; i++) {
		e2 = group_destroy(fd, groups[i]);
		e = e ? e : e2;
	}
	for (i = 0; i < prepared; i++)
		job_release(&s, &jobs[i]);
	return finish(&s, e);
}

/*
 * job-fault: a job stores to an unmapped VA. Its fence must carry an error, the group
 * must report FATAL_FAULT; then a group on a new VM of the same device must work.
 */
static int cmd_job_fault(int fd, int argc, char **argv)
{
	uint64_t offset = 0x4000000; /* past the session's BO: nothing mapped there */
	const struct opt opts[] = { { "--offset", &offset }, { NULL, NULL } };
	struct cs_buf b = { .n = 0 };
	struct session s, s2;
	struct job j, j2;
	uint32_t group = 0, state = 0, fq = 0, vm_state = 0;
	int32_t st = 0, st2 = 0;
	int e, e2, ok;

	if ((e = parse_opts("job-fault", argc, argv, opts, NULL, 0, NULL)))
		return e;
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	printf("fault.va=0x%" PRIx64 "\n", s.va + offset);
	cs_store_value(&b, s.va + offset, 0xbad);
	cs_flush_all(&b);
	if ((e = job_prepare(&s, &b, &j)))
		return finish(&s, e);
	if ((e = group_create(&s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &group)) ||
	    (e = job_submit(&s, group, 0, &j)) ||
	    (e = job_wait(&s, &j, "fault", 10000, &st)) ||
	    (e = group_get_state(fd, group, &state, &fq)))
		goto out;
	printf("fault.group_state=0x%x\n", state);
	printf("fault.fatal_queues=0x%x\n", fq);
	printf("fault.state_fatal=%d\n", !!(state & PT_GROUP_STATE_FATAL_FAULT));
	if (!vm_get_state(fd, s.vm, &vm_state))
		printf("fault.vm_state=%u\n", vm_state);
	ok = st < 0 && (state & PT_GROUP_STATE_FATAL_FAULT) && (fq & 1);

	/* The faulty group is unusable: a new job on it is refused or fails. */
	if (!job_prepare(&s, &b, &j2)) {
		int se = group_submit_raw(fd, group, 0, j2.va, j2.size, j2.syncobj);

		printf("fault.resubmit_errname=%s\n", errname(se));
		if (!se && !syncobj_wait(fd, &j2.syncobj, 1, 10000ull * 1000000ull) &&
		    !syncobj_fence_status(fd, j2.syncobj, &st2, NULL))
			printf("fault.resubmit_fence_status=%d\n", st2);
		if (!se && st2 == 1)
			ok = 0; /* a faulty group must not run jobs */
		job_release(&s, &j2);
	}

	/* recovery: a new group on a new VM of the same file/device */
	e2 = group_destroy(fd, group);
	group = 0;
	if (!(e = e2) && !(e = session_open(fd, &s2, 0, SESSION_VA, SESSION_SIZE))) {
		e = run_store_job(&s2, "recover", 0x40, 0xdeadbeef);
		e2 = session_close(&s2);
		e = e ? e : e2;
	}
	if (!e && !ok)
		e = EIO;
	printf("fault.reported=%d\n", ok);
out:
	if (group)
		group_destroy(fd, group);
	job_release(&s, &j);
	return finish(&s, e);
}

/*
 * job-hang: a job waits on a sync object nobody sets. The driver's job timeout (5 s)
 * must fire: the fence gets an error and the group reports TIMEDOUT; then a new group
 * on the same VM works.
 */
static int cmd_job_hang(int fd, int argc, char **argv)
{
	uint64_t timeout_ms = 30000;
	const struct opt opts[] = { { "--timeout-ms", &timeout_ms }, { NULL, NULL } };
	struct cs_buf b = { .n = 0 };
	struct session s;
	struct job j;
	uint32_t group = 0, state = 0, fq = 0;
	uint64_t t0;
	int32_t st = 0;
	int e, e2, ok;

	if ((e = parse_opts("job-hang", argc, argv, opts, NULL, 0, NULL)))
		return e;
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		return e;
	cs_wait_gt0(&b, s.va + SYNC_OFF); /* forever: nothing sets it */
	cs_store_value(&b, s.va + 0x40, 0x600d);
	if ((e = job_prepare(&s, &b, &j)))
		return finish(&s, e);
	if ((e = group_create(&s, 1, 0x1000, PT_GROUP_PRIORITY_MEDIUM, &group)))
		goto out;
	t0 = now_ns();
	if ((e = job_submit(&s, group, 0, &j)) ||
	    (e = job_wait(&s, &j, "hang", (uint32_t)timeout_ms, &st)))
		goto out;
	printf("hang.elapsed_ms=%" PRIu64 "\n", (now_ns() - t0) / 1000000);
	if ((e = group_get_state(fd, group, &state, &fq)))
		goto out;
	printf("hang.group_state=0x%x\n", state);
	printf("hang.state_timedout=%d\n", !!(state & PT_GROUP_STATE_TIMEDOUT));
	printf("hang.stored=0x%x\n", *session_u32(&s, 0x40));
	ok = st < 0 && (state & PT_GROUP_STATE_TIMEDOUT) && *session_u32(&s, 0x40) == 0;
	printf("hang.reported=%d\n", ok);
	e2 = group_destroy(fd, group);
	group = 0;
	if ((e = e2))
		goto out;
	/* recovery: a new group on the same VM */
	e = run_store_job(&s, "recover", 0x80, 0xdeadbeef);
	if (!e && !ok)
		e = EIO;
out:
	if (group)
		group_destroy(fd, group);
	job_release(&s, &j);
	return finish(&s, e);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, uint64_t n, unsigned pct)
{
	uint64_t i = (n * pct + 99) / 100;

	return sorted[i ? i - 1 : 0];
}

/*
 * jobs N: N jobs in a row on one queue, each incrementing a counter in memory
 * (LOAD_MULTIPLE, ADD_IMM32, STORE_MULTIPLE) and signalling its own sync object; up to
 * --depth jobs in flight. Prints jobs/s and the submission-to-signal latency (the sync
 * file's signal timestamp minus the time just before GROUP_SUBMIT).
 */
#define MAX_DEPTH 64

static int cmd_jobs(int fd, int argc, char **argv)
{
	uint64_t n = 1000, depth = 8;
	const struct opt opts[] = { { "--depth", &depth }, { NULL, NULL } };
	struct cs_buf b = { .n = 0 };
	struct job ring[MAX_DEPTH];
	uint64_t *lat, *sub, t0, t1, done = 0, errors = 0, va;
	unsigned npos, i, made = 0;
	uint32_t group = 0, state = 0, counter;
	struct session s;
	int e = 0, e2;

	if ((e = parse_opts("jobs", argc, argv, opts, &n, 1, &npos)))
		return e;
	if (!n || n > 10000000 || !depth || depth > MAX_DEPTH) {
		fprintf(stderr, "jobs: N must be 1..10^7 and --depth 1..%d\n", MAX_DEPTH);
		return EINVAL;
	}
	lat = calloc(n, sizeof(*lat));
	sub = calloc(n, sizeof(*sub));
	if (!lat || !sub)
		return ENOMEM;
	if ((e = session_open(fd, &s, 0, SESSION_VA, SESSION_SIZE)))
		goto out_free;
	*session_u32(&s, 0) = 0;
	cs_emit(&b, cs_move48(R_ADDR, s.va));
	cs_emit(&b, cs_ldst(CS_LOAD_MULTIPLE, R_VAL, R_ADDR, 1, 0));
	cs_emit(&b, cs_wait(SB_ALL));
	cs_emit(&b, cs_add_imm32(R_VAL, R_VAL, 1));
	cs_emit(&b, cs_ldst(CS_STORE_MULTIPLE, R_VAL, R_ADDR, 1, 0));
	cs_emit(&b, cs_wait(SB_ALL));
	va = session_code(&s, b.w, b.n);
	for (i = 0; i < depth; i++) {
		memset(&ring[i], 0, sizeof(ring[i]));
		ring[i].va = va;
		ring[i].size = b.n * 8;
		if ((e = syncobj_create(fd, &ring[i].syncobj)))
			goto out;
		made++;
	}
	if ((e = group_create(&s, 1, 0x10000, PT_GROUP_PRIORITY_MEDIUM, &group)))
		goto out;
	printf("jobs=%" PRIu64 "\n", n);
	printf("depth=%" PRIu64 "\n", depth);
	t0 = now_ns();
	for (i = 0; i < n + depth; i++) {
		struct job *j = &ring[i % depth];

		if (i >= depth) {   /* job i - depth used this slot: collect it */
			uint64_t k = i - depth, ts = 0;
			int32_t st = 0;

			if ((e = syncobj_wait(fd, &j->syncobj, 1, 10000ull * 1000000ull)) ||
				 (e = syncobj_fence_status(fd, j->syncobj, &st, &ts))) {
				printf("error=job %" PRIu64 " not signalled (%s)\n", k, errname(e));
				goto out_group;
			} else {
				if (!ts)
					ts = now_ns();
				lat[k] = ts - j->submit_ns;
				errors += st != 1;
				done++;
			}
		}
		if (i < n) {
			uint64_t a = now_ns();

			if ((e = job_submit(&s, group, 0, j)))
				goto out_group;
			sub[i] = now_ns() - a;
		}
	}
	t1 = now_ns();
	counter = *session_u32(&s, 0);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	qsort(sub, n, sizeof(*sub), cmp_u64);
	printf("signalled=%" PRIu64 "\n", done);
	printf("fence_errors=%" PRIu64 "\n", errors);
	printf("counter=%u\n", counter);
	printf("elapsed_ms=%" PRIu64 "\n", (t1 - t0) / 1000000);
	printf("jobs_per_s=%.1f\n", (double)n * 1e9 / (double)(t1 - t0));
	printf("latency_p50_us=%" PRIu64 "\n", percentile(lat, n, 50) / 1000);
	printf("latency_p99_us=%" PRIu64 "\n", percentile(lat, n, 99) / 1000);
	printf("latency_max_us=%" PRIu64 "\n", lat[n - 1] / 1000);
	printf("submit_p50_us=%" PRIu64 "\n", percentile(sub, n, 50) / 1000);
	if ((e = group_get_state(fd, group, &state, NULL)))
		goto out_group;
	printf("group_state=0x%x\n", state);
	if (done != n || errors || counter != n || state)
		e = EIO;
out_group:
	e2 = group_destroy(fd, group);
	e = e ? e : e2;
out:
	for (i = 0; i < made; i++)
		syncobj_destroy(fd, ring[i].syncobj);
	e = finish(&s, e);
out_free:
	free(lat);
	free(sub);
	return e;
}

/* cs-encode: the encodings of the instructions this client emits, for the unit tests to
 * compare with scheduler/isa.py (needs no device). */
static int cmd_cs_encode(int fd, int argc, char **argv)
{
	(void)fd;
	(void)argc;
	(void)argv;
	printf("MOVE48 dst=4 imm=0x123456789abc 0x%016" PRIx64 "\n", cs_move48(4, 0x123456789abcull));
	printf("MOVE32 dst=2 imm=0xdeadbeef 0x%016" PRIx64 "\n", cs_move32(2, 0xdeadbeef));
	printf("WAIT wait_mask=0xff 0x%016" PRIx64 "\n", cs_wait(0xff));
	printf("WAIT wait_mask=0x2 0x%016" PRIx64 "\n", cs_wait(2));
	printf("ADD_IMM32 dst=3 src=3 imm=-1 0x%016" PRIx64 "\n", cs_add_imm32(3, 3, -1));
	printf("ADD_IMM32 dst=6 src=1 imm=0x12345 0x%016" PRIx64 "\n", cs_add_imm32(6, 1, 0x12345));
	printf("LOAD_MULTIPLE base=6 addr=4 mask=0x1 offset=0 0x%016" PRIx64 "\n",
	       cs_ldst(CS_LOAD_MULTIPLE, 6, 4, 1, 0));
	printf("LOAD_MULTIPLE base=2 addr=0 mask=0xf offset=-8 0x%016" PRIx64 "\n",
	       cs_ldst(CS_LOAD_MULTIPLE, 2, 0, 0xf, -8));
	printf("STORE_MULTIPLE base=2 addr=0 mask=0x1 offset=4 0x%016" PRIx64 "\n",
	       cs_ldst(CS_STORE_MULTIPLE, 2, 0, 1, 4));
	printf("BRANCH cond=3 value=3 offset=-3 0x%016" PRIx64 "\n", cs_branch(CS_NE, 3, -3));
	printf("BRANCH cond=6 value=0 offset=5 0x%016" PRIx64 "\n", cs_branch(CS_ALWAYS, 0, 5));
	printf("FLUSH_CACHE2 l2=3 lsc=3 other=0 flush_id=10 wait_mask=0 signal_slot=1 0x%016" PRIx64 "\n",
	       cs_flush_cache2(3, 3, 0, 10, 0, 1));
	printf("FLUSH_CACHE2 l2=3 lsc=3 other=2 flush_id=94 wait_mask=0x3 signal_slot=0 0x%016" PRIx64 "\n",
	       cs_flush_cache2(3, 3, 2, 94, 3, 0));
	printf("SYNC_SET32 addr=0 data=2 wait_mask=0 signal_slot=0 scope=0 error_propagate=0 0x%016" PRIx64 "\n",
	       cs_sync_update(CS_SYNC_SET32, 0, 2, 0, 0, 0, 0));
	printf("SYNC_ADD32 addr=4 data=6 wait_mask=0x3 signal_slot=2 scope=2 error_propagate=1 0x%016" PRIx64 "\n",
	       cs_sync_update(CS_SYNC_ADD32, 4, 6, 3, 2, 2, 1));
	printf("SYNC_ADD64 addr=92 data=94 wait_mask=0 signal_slot=0 scope=0 error_propagate=1 0x%016" PRIx64 "\n",
	       cs_sync_update(CS_SYNC_ADD64, 92, 94, 0, 0, 0, 1));
	printf("SYNC_SET64 addr=8 data=12 wait_mask=0x1 signal_slot=3 scope=0 error_propagate=0 0x%016" PRIx64 "\n",
	       cs_sync_update(CS_SYNC_SET64, 8, 12, 1, 3, 0, 0));
	printf("SYNC_WAIT32 addr=0 data=2 cond=1 error_reject=0 0x%016" PRIx64 "\n",
	       cs_sync_wait(CS_SYNC_WAIT32, 0, 2, CS_GT, 0));
	printf("SYNC_WAIT64 addr=8 data=12 cond=0 error_reject=1 0x%016" PRIx64 "\n",
	       cs_sync_wait(CS_SYNC_WAIT64, 8, 12, CS_LE, 1));
	printf("NOP 0x%016" PRIx64 "\n", (uint64_t)CS_NOP);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* main                                                                                */
/* ---------------------------------------------------------------------------------- */

static const struct command {
	const char *name;
	int (*run)(int fd, int argc, char **argv);
	const char *usage;
	int no_device;
} commands[] = {
	{ "query", cmd_query, "query", 0 },
	{ "vm-bind", cmd_vm_bind,
	  "vm-bind [--size N] [--va VA] [--pattern X] [--with-job] [--hold SECONDS]", 0 },
	{ "bad-ioctls", cmd_bad_ioctls, "bad-ioctls", 0 },
	{ "job-store", cmd_job_store, "job-store", 0 },
	{ "job-loop", cmd_job_loop, "job-loop [N]", 0 },
	{ "job-sync-chain", cmd_job_sync_chain, "job-sync-chain [--delay-ms MS]", 0 },
	{ "groups", cmd_groups, "groups [N] [--spin ITERATIONS] [--release 0|1] [--delay-ms MS]", 0 },
	{ "loops", cmd_loops, "loops [N] [ITER] [--priority 0-2] [--rt-after-ms MS] [--timeout-ms MS]", 0 },
	{ "job-fault", cmd_job_fault, "job-fault [--offset BYTES]", 0 },
	{ "job-hang", cmd_job_hang, "job-hang [--timeout-ms MS]", 0 },
	{ "jobs", cmd_jobs, "jobs [N] [--depth D]", 0 },
	{ "cs-encode", cmd_cs_encode, "cs-encode", 1 },
};

static int usage(void)
{
	unsigned i;

	fprintf(stderr, "usage: panthor-client [--dev PATH] COMMAND [ARGS]\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "  %s\n", commands[i].usage);
	return 2;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/dri/renderD128";
	const struct command *cmd = NULL;
	unsigned i;
	int fd, e, a = 1;

	setvbuf(stdout, NULL, _IOLBF, 0); /* lines reach the console as they happen */
	if (a + 1 < argc && !strcmp(argv[a], "--dev")) {
		dev = argv[a + 1];
		a += 2;
	}
	if (a >= argc)
		return usage();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[a], commands[i].name))
			cmd = &commands[i];
	if (!cmd)
		return usage();
	if (cmd->no_device)
		return cmd->run(-1, argc - a - 1, argv + a + 1) ? 1 : 0;

	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("error=open errno=%d errname=%s msg=%s path=%s\n", errno, errname(errno),
		       strerror(errno), dev);
		return 1;
	}
	printf("command=%s\n", cmd->name);
	printf("device=%s\n", dev);
	e = cmd->run(fd, argc - a - 1, argv + a + 1);
	close(fd);
	printf("result=%s\n", e ? "fail" : "ok");
	return e ? 1 : 0;
}

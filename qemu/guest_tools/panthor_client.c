/*
 * panthor-client: a small test client for the panthor DRM uAPI, run inside the mali-vdev
 * guest against /dev/dri/renderD128.
 *
 * Plain C, no libdrm: the ioctl argument structs below are our own definitions of the
 * layouts in the guest kernel's include/uapi/drm/panthor_drm.h (driver version 1.8;
 * the _Static_asserts pin their sizes).  Built statically for arm64 on the host by
 * qemu/guest_tools.py and installed in the initramfs as /usr/bin/panthor-client.
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
 *   panthor-client vm-bind [--size N] [--va VA] [--pattern X] [--hold SECONDS]
 *       VM_CREATE, BO_CREATE, BO_MMAP_OFFSET, mmap, VM_BIND map at VA, fill the buffer
 *       through the CPU mapping (32-bit little-endian word i = pattern + i), read it
 *       back, VM_GET_STATE, optionally hold everything for SECONDS, VM_BIND unmap,
 *       VM_DESTROY.
 *   panthor-client bad-ioctls
 *       Invalid arguments that the driver must reject, each with the errno panthor
 *       returns for it (see panthor_drv.c / panthor_mmu.c).
 *
 * Adding a subcommand: write `static int cmd_x(int fd, int argc, char **argv)` and add
 * it to `commands[]`.  The helpers (`xioctl`, `vm_create`, `bo_create`, `vm_bind_one`,
 * ...) are meant to be reused by the GROUP_* subcommands of later issues.
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
/* vm-bind                                                                             */
/* ---------------------------------------------------------------------------------- */

static int cmd_vm_bind(int fd, int argc, char **argv)
{
	uint64_t size = 0x10000, va = 0x1000000, pattern = 0xC0DE0000, hold = 0;
	uint64_t bo_size, mmap_off = 0, user_va_range = 0;
	uint32_t vm_id = 0, bo = 0, state = 0, words, i;
	volatile uint32_t *cpu;
	int e, bad = 0;

	for (i = 0; i < (uint32_t)argc; i++) {
		uint64_t *dst = !strcmp(argv[i], "--size") ? &size :
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

	if (hold) {
		printf("holding=%" PRIu64 "\n", hold);
		fflush(stdout);
		sleep_s((double)hold);
		printf("held=%" PRIu64 "\n", hold);
	}

out_unbind:
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
/* main                                                                                */
/* ---------------------------------------------------------------------------------- */

static const struct command {
	const char *name;
	int (*run)(int fd, int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "query", cmd_query, "query" },
	{ "vm-bind", cmd_vm_bind,
	  "vm-bind [--size N] [--va VA] [--pattern X] [--hold SECONDS]" },
	{ "bad-ioctls", cmd_bad_ioctls, "bad-ioctls" },
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

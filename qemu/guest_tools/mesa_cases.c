/* mesa-cases: GPU work through Debian's Mesa, one result buffer per case, so the guest
 * tests can compare the virtual Mali (panvk, panfrost) with Mesa's CPU drivers (lavapipe,
 * llvmpipe) byte for byte.
 *
 *   mesa-cases vk DEVICE [CASE...]   Vulkan on the first physical device whose name contains
 *                                    DEVICE ("Mali", "llvmpipe"); all cases by default
 *   mesa-cases gl [CASE...]          GLES 3.1 on surfaceless EGL; the driver is Mesa's
 *                                    choice (LIBGL_ALWAYS_SOFTWARE=1: llvmpipe)
 *   mesa-cases list                  the case names
 *
 * Output, key=value lines: per case `NAME.result=ok|fail`, then `NAME.size`, `NAME.fnv1a64`
 * (FNV-1a 64 of the whole result buffer) and `NAME.head` (its first 32 bytes in hex), or
 * `NAME.error` / `NAME.at` (the failing call). Vulkan cases share one VkDevice (one panthor
 * group per queue); after VK_ERROR_DEVICE_LOST the device is created again for the next case
 * and counted (`devices_created`). GL cases each run in a child process (a crash is
 * `result=crash`). The exit status is 0 only if every case succeeded.
 *
 * No arm64 graphics library is needed at link time: libvulkan.so.1, libEGL.so.1 and
 * libGLESv2.so.2 are opened with dlopen. The SPIR-V comes from mesa_shaders/ *.comp,
 * compiled at build time with glslangValidator (qemu/mesa_tool.py).
 */
#define VK_NO_PROTOTYPES
#include <dlfcn.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vulkan/vulkan.h>
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl31.h>

#include "spv_arith.h"
#include "spv_atomics.h"
#include "spv_branch.h"
#include "spv_ids.h"
#include "spv_loop.h"
#include "spv_shared.h"

#define FENCE_TIMEOUT_NS (30ull * 1000 * 1000 * 1000)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- results ------------------------------------------------------------------------ */

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void report_ok(const char *name, const void *data, size_t size)
{
    const uint8_t *p = data;
    printf("%s.result=ok\n%s.size=%zu\n%s.fnv1a64=%016" PRIx64 "\n%s.head=", name, name, size,
           name, fnv1a64(p, size), name);
    for (size_t i = 0; i < size && i < 32; i++)
        printf("%02x", p[i]);
    printf("\n");
    fflush(stdout);
}

/* `at`: the failing call, printed up to its argument list. */
static void report_fail(const char *name, const char *error, const char *at)
{
    printf("%s.result=fail\n%s.error=%s\n%s.at=%.*s\n", name, name, error, name,
           (int)strcspn(at, "("), at);
    fflush(stdout);
}

/* Deterministic input data (xorshift32), the same on every driver. */
static void fill_random(uint32_t *w, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w[i] = x;
    }
}

static int wanted(const char *name, char **only, int n_only)
{
    if (n_only == 0)
        return 1;
    for (int i = 0; i < n_only; i++)
        if (strcmp(only[i], name) == 0)
            return 1;
    return 0;
}

/* --- Vulkan: entry points ------------------------------------------------------------ */

#define VK_INSTANCE_FNS(X) X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) \
    X(vkGetPhysicalDeviceProperties) X(vkGetPhysicalDeviceQueueFamilyProperties) \
    X(vkGetPhysicalDeviceMemoryProperties) X(vkCreateDevice) X(vkGetDeviceProcAddr)
#define VK_DEVICE_FNS(X) X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateCommandPool) \
    X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkFreeCommandBuffers) \
    X(vkBeginCommandBuffer) X(vkEndCommandBuffer) X(vkQueueSubmit) X(vkCreateFence) \
    X(vkDestroyFence) X(vkWaitForFences) X(vkDeviceWaitIdle) X(vkCreateBuffer) \
    X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements) X(vkAllocateMemory) X(vkFreeMemory) \
    X(vkBindBufferMemory) X(vkMapMemory) X(vkInvalidateMappedMemoryRanges) \
    X(vkCmdFillBuffer) X(vkCmdUpdateBuffer) X(vkCmdCopyBuffer) X(vkCmdPipelineBarrier) \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout) \
    X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout) \
    X(vkCreateComputePipelines) X(vkDestroyPipeline) X(vkCreateDescriptorPool) \
    X(vkDestroyDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets) \
    X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch) \
    X(vkCreateImage) X(vkDestroyImage) X(vkGetImageMemoryRequirements) X(vkBindImageMemory) \
    X(vkCreateImageView) X(vkDestroyImageView) X(vkCreateRenderPass) X(vkDestroyRenderPass) \
    X(vkCreateFramebuffer) X(vkDestroyFramebuffer) X(vkCmdBeginRenderPass) \
    X(vkCmdEndRenderPass) X(vkCmdCopyImageToBuffer)

#define DECLARE(fn) static PFN_##fn fn;
static PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
static PFN_vkCreateInstance vkCreateInstance;
VK_INSTANCE_FNS(DECLARE)
VK_DEVICE_FNS(DECLARE)

static const char *vk_result_name(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
    R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
    R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
    R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_UNKNOWN)
#undef R
    default: return "VK_ERROR_(other)";
    }
}

/* --- Vulkan: context ----------------------------------------------------------------- */

typedef struct {
    VkInstance instance;
    VkPhysicalDevice phys;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t family;
    VkDevice dev;
    VkQueue queue;
    VkCommandPool pool;
    int devices_created;
} Vk;

/* A failing call inside a case: remembered, then the case unwinds to its cleanup. */
typedef struct {
    VkResult r;
    const char *at;
} Err;

#define VKTRY(e, call) do { if ((e)->r == VK_SUCCESS) { VkResult r_ = (call); \
    if (r_ != VK_SUCCESS) { (e)->r = r_; (e)->at = #call; } } } while (0)

static int vk_device_create(Vk *vk)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0,
                                 vk->family, 1, &prio};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1, .pQueueCreateInfos = &q};
    VkResult r = vkCreateDevice(vk->phys, &ci, NULL, &vk->dev);
    if (r != VK_SUCCESS) {
        printf("error=vkCreateDevice %s\n", vk_result_name(r));
        return -1;
    }
#define LOAD_DEV(fn) fn = (PFN_##fn)vkGetDeviceProcAddr(vk->dev, #fn);
    VK_DEVICE_FNS(LOAD_DEV)
    vkGetDeviceQueue(vk->dev, vk->family, 0, &vk->queue);
    VkCommandPoolCreateInfo pci = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, NULL, 0,
                                   vk->family};
    r = vkCreateCommandPool(vk->dev, &pci, NULL, &vk->pool);
    if (r != VK_SUCCESS) {
        printf("error=vkCreateCommandPool %s\n", vk_result_name(r));
        return -1;
    }
    vk->devices_created++;
    return 0;
}

static void vk_device_destroy(Vk *vk)
{
    if (vk->dev == VK_NULL_HANDLE)
        return;
    vkDeviceWaitIdle(vk->dev);
    vkDestroyCommandPool(vk->dev, vk->pool, NULL);
    vkDestroyDevice(vk->dev, NULL);
    vk->dev = VK_NULL_HANDLE;
}

static int vk_init(Vk *vk, const char *want)
{
    void *lib = dlopen("libvulkan.so.1", RTLD_NOW);
    if (!lib) {
        printf("error=dlopen libvulkan.so.1: %s\n", dlerror());
        return -1;
    }
    vkGetInstanceProcAddr = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
    vkCreateInstance = (PFN_vkCreateInstance)vkGetInstanceProcAddr(NULL, "vkCreateInstance");
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "mesa-cases", 1,
                             "mali-vdev", 1, VK_API_VERSION_1_1};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ici, NULL, &vk->instance);
    if (r != VK_SUCCESS) {
        printf("error=vkCreateInstance %s\n", vk_result_name(r));
        return -1;
    }
#define LOAD_INST(fn) fn = (PFN_##fn)vkGetInstanceProcAddr(vk->instance, #fn);
    VK_INSTANCE_FNS(LOAD_INST)
    VkPhysicalDevice devs[8];
    uint32_t n = ARRAY_LEN(devs);
    vkEnumeratePhysicalDevices(vk->instance, &n, devs);
    printf("physical_devices=%u\n", n);
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devs[i], &p);
        printf("physical_device.%u=%s\n", i, p.deviceName);
        if (!vk->phys && strstr(p.deviceName, want)) {
            vk->phys = devs[i];
            printf("device=%s\ndevice.api=%u.%u.%u\ndevice.driver_version=0x%x\n",
                   p.deviceName, VK_API_VERSION_MAJOR(p.apiVersion),
                   VK_API_VERSION_MINOR(p.apiVersion), VK_API_VERSION_PATCH(p.apiVersion),
                   p.driverVersion);
        }
    }
    if (!vk->phys) {
        printf("error=no physical device named like %s\n", want);
        return -1;
    }
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem);
    VkQueueFamilyProperties qf[16];
    uint32_t nq = ARRAY_LEN(qf);
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    const VkQueueFlags need = VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT;
    vk->family = UINT32_MAX;
    for (uint32_t i = 0; i < nq && vk->family == UINT32_MAX; i++)
        if ((qf[i].queueFlags & need) == need)
            vk->family = i;
    if (vk->family == UINT32_MAX) {
        printf("error=no graphics+compute queue family\n");
        return -1;
    }
    return vk_device_create(vk);
}

static int32_t memory_type(Vk *vk, uint32_t bits, VkMemoryPropertyFlags flags)
{
    for (uint32_t i = 0; i < vk->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (vk->mem.memoryTypes[i].propertyFlags & flags) == flags)
            return (int32_t)i;
    return -1;
}

/* --- Vulkan: buffers, commands, pipelines -------------------------------------------- */

typedef struct {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    VkDeviceSize size;
} Buf;

static void buf_create(Vk *vk, Err *e, Buf *b, VkDeviceSize size)
{
    memset(b, 0, sizeof(*b));
    b->size = size;
    VkBufferCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VKTRY(e, vkCreateBuffer(vk->dev, &ci, NULL, &b->buf));
    if (e->r != VK_SUCCESS)
        return;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    int32_t type = memory_type(vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                       VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (type < 0) {
        e->r = VK_ERROR_FEATURE_NOT_PRESENT;
        e->at = "no host-visible coherent memory type";
        return;
    }
    VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, NULL, req.size,
                               (uint32_t)type};
    VKTRY(e, vkAllocateMemory(vk->dev, &ai, NULL, &b->mem));
    VKTRY(e, vkBindBufferMemory(vk->dev, b->buf, b->mem, 0));
    VKTRY(e, vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
}

static void buf_destroy(Vk *vk, Buf *b)
{
    if (b->buf)
        vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(vk->dev, b->mem, NULL);
    memset(b, 0, sizeof(*b));
}

static VkCommandBuffer cmd_begin(Vk *vk, Err *e)
{
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkCommandBufferAllocateInfo ai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, NULL,
                                      vk->pool, VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VKTRY(e, vkAllocateCommandBuffers(vk->dev, &ai, &cmd));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VKTRY(e, vkBeginCommandBuffer(cmd, &bi));
    return cmd;
}

/* Makes `src` stage writes visible to the host, ends, submits, waits for the fence. */
static void cmd_submit_wait(Vk *vk, Err *e, VkCommandBuffer cmd, VkPipelineStageFlags src)
{
    if (e->r == VK_SUCCESS) {
        VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER, NULL,
                              VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                              VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(cmd, src, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    }
    VKTRY(e, vkEndCommandBuffer(cmd));
    VkFence fence = VK_NULL_HANDLE;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKTRY(e, vkCreateFence(vk->dev, &fci, NULL, &fence));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                       .pCommandBuffers = &cmd};
    VKTRY(e, vkQueueSubmit(vk->queue, 1, &si, fence));
    VKTRY(e, vkWaitForFences(vk->dev, 1, &fence, VK_TRUE, FENCE_TIMEOUT_NS));
    if (e->r == VK_SUCCESS)
        VKTRY(e, vkDeviceWaitIdle(vk->dev));  /* a fault after the fence shows up here */
    if (fence)
        vkDestroyFence(vk->dev, fence, NULL);
    if (cmd && e->r != VK_ERROR_DEVICE_LOST && e->r != VK_TIMEOUT)
        vkFreeCommandBuffers(vk->dev, vk->pool, 1, &cmd);
}

typedef struct {
    VkShaderModule mod;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
    VkDescriptorPool dpool;
    VkDescriptorSet set;
} Pipe;

/* A compute pipeline on `bufs` (bindings 0..n-1, storage buffers), `push` bytes of push
 * constants, and the workgroup size as specialization constants 0-2 when `wg` is given. */
static void pipe_create(Vk *vk, Err *e, Pipe *p, const uint32_t *spv, size_t spv_size,
                        Buf *bufs, uint32_t n, uint32_t push, const uint32_t *wg)
{
    memset(p, 0, sizeof(*p));
    VkShaderModuleCreateInfo smci = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, NULL, 0,
                                     spv_size, spv};
    VKTRY(e, vkCreateShaderModule(vk->dev, &smci, NULL, &p->mod));
    VkDescriptorSetLayoutBinding b[4];
    for (uint32_t i = 0; i < n; i++)
        b[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                              VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo dci = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           NULL, 0, n, b};
    VKTRY(e, vkCreateDescriptorSetLayout(vk->dev, &dci, NULL, &p->dsl));
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, push};
    VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, NULL, 0,
                                       1, &p->dsl, push ? 1 : 0, &pr};
    VKTRY(e, vkCreatePipelineLayout(vk->dev, &plci, NULL, &p->layout));
    VkSpecializationMapEntry me[3] = {{0, 0, 4}, {1, 4, 4}, {2, 8, 4}};
    VkSpecializationInfo spec = {3, me, 12, wg};
    VkComputePipelineCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0,
                  VK_SHADER_STAGE_COMPUTE_BIT, p->mod, "main", wg ? &spec : NULL},
        .layout = p->layout};
    VKTRY(e, vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &cci, NULL, &p->pipe));
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, n};
    VkDescriptorPoolCreateInfo dpci = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, NULL, 0,
                                       1, 1, &ps};
    VKTRY(e, vkCreateDescriptorPool(vk->dev, &dpci, NULL, &p->dpool));
    VkDescriptorSetAllocateInfo dai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, NULL,
                                       p->dpool, 1, &p->dsl};
    VKTRY(e, vkAllocateDescriptorSets(vk->dev, &dai, &p->set));
    if (e->r != VK_SUCCESS)
        return;
    VkDescriptorBufferInfo bi[4];
    VkWriteDescriptorSet w[4];
    for (uint32_t i = 0; i < n; i++) {
        bi[i] = (VkDescriptorBufferInfo){bufs[i].buf, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = p->set, .dstBinding = i, .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(vk->dev, n, w, 0, NULL);
}

static void pipe_destroy(Vk *vk, Pipe *p)
{
    if (p->dpool)
        vkDestroyDescriptorPool(vk->dev, p->dpool, NULL);
    if (p->pipe)
        vkDestroyPipeline(vk->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(vk->dev, p->layout, NULL);
    if (p->dsl)
        vkDestroyDescriptorSetLayout(vk->dev, p->dsl, NULL);
    if (p->mod)
        vkDestroyShaderModule(vk->dev, p->mod, NULL);
}

/* --- Vulkan: the cases --------------------------------------------------------------- */

/* Each case fills `*out` (a host-visible buffer whose bytes are the result). */
typedef void (*VkCaseFn)(Vk *vk, Err *e, Buf *out, const void *arg);

static void case_fill(Vk *vk, Err *e, Buf *out, const void *arg)
{
    (void)arg;
    buf_create(vk, e, out, 65536);
    if (e->r)
        return;
    fill_random(out->map, 65536 / 4, 11);
    VkCommandBuffer cmd = cmd_begin(vk, e);
    if (e->r == VK_SUCCESS) {
        vkCmdFillBuffer(cmd, out->buf, 256, 16384, 0xa5c3f00du);
        vkCmdFillBuffer(cmd, out->buf, 40000, VK_WHOLE_SIZE, 0x01020304u);
    }
    cmd_submit_wait(vk, e, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT);
}

static void case_update(Vk *vk, Err *e, Buf *out, const void *arg)
{
    (void)arg;
    static uint32_t data[1024];
    fill_random(data, ARRAY_LEN(data), 12);
    buf_create(vk, e, out, 16384);
    if (e->r)
        return;
    fill_random(out->map, 16384 / 4, 13);
    VkCommandBuffer cmd = cmd_begin(vk, e);
    if (e->r == VK_SUCCESS) {
        vkCmdUpdateBuffer(cmd, out->buf, 64, sizeof(data), data);
        vkCmdUpdateBuffer(cmd, out->buf, 8192, 12, data + 7);
    }
    cmd_submit_wait(vk, e, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT);
}

static void case_copy(Vk *vk, Err *e, Buf *out, const void *arg)
{
    (void)arg;
    Buf src;
    buf_create(vk, e, &src, 32768);
    buf_create(vk, e, out, 32768);
    if (e->r == VK_SUCCESS) {
        fill_random(src.map, 32768 / 4, 14);
        fill_random(out->map, 32768 / 4, 15);
        VkCommandBuffer cmd = cmd_begin(vk, e);
        /* aligned, large; odd offsets and size; a small one */
        VkBufferCopy regions[] = {{0, 128, 16000}, {16387, 20003, 1001}, {30000, 24000, 12}};
        if (e->r == VK_SUCCESS)
            vkCmdCopyBuffer(cmd, src.buf, out->buf, ARRAY_LEN(regions), regions);
        cmd_submit_wait(vk, e, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT);
    }
    buf_destroy(vk, &src);
}

typedef struct {
    const uint32_t *spv;
    size_t spv_size;
    uint32_t in_words, out_bytes, seed, push_size;
    uint32_t push[4];
    uint32_t groups[3];
    uint32_t wg[3];               /* specialization constants; all 0: none */
    int atomics;                  /* the output starts as atomics.comp's identities */
} Dispatch;

static void case_dispatch(Vk *vk, Err *e, Buf *out, const void *arg)
{
    const Dispatch *d = arg;
    Buf bufs[2];
    memset(bufs, 0, sizeof(bufs));
    uint32_t nbufs = d->in_words ? 2 : 1;
    if (d->in_words)
        buf_create(vk, e, &bufs[0], d->in_words * 4);
    buf_create(vk, e, &bufs[nbufs - 1], d->out_bytes);
    Pipe p;
    memset(&p, 0, sizeof(p));
    if (e->r == VK_SUCCESS) {
        if (d->in_words)
            fill_random(bufs[0].map, d->in_words, d->seed);
        uint32_t *o = bufs[nbufs - 1].map;
        memset(o, d->atomics ? 0 : 0xee, d->out_bytes);
        if (d->atomics) {
            o[2] = o[4] = 0xffffffffu;                    /* mn, andv */
            o[7] = 0x7fffffff;                            /* smn */
        }
        pipe_create(vk, e, &p, d->spv, d->spv_size, bufs, nbufs, d->push_size,
                    d->wg[0] ? d->wg : NULL);
    }
    VkCommandBuffer cmd = cmd_begin(vk, e);
    if (e->r == VK_SUCCESS) {
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipe);
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &p.set,
                                0, NULL);
        if (d->push_size)
            vkCmdPushConstants(cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size,
                               d->push);
        vkCmdDispatch(cmd, d->groups[0], d->groups[1], d->groups[2]);
    }
    cmd_submit_wait(vk, e, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    pipe_destroy(vk, &p);
    *out = bufs[nbufs - 1];
    if (d->in_words)
        buf_destroy(vk, &bufs[0]);
}

/* A render pass whose colour attachment is cleared on load, no draw, stored; then the image
 * is copied to a buffer (tightly packed rows). */
typedef struct {
    uint32_t width, height;
    float color[4];
} Clear;

static void case_clear(Vk *vk, Err *e, Buf *out, const void *arg)
{
    const Clear *c = arg;
    VkImage img = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    VkImageView view = VK_NULL_HANDLE;
    VkRenderPass rp = VK_NULL_HANDLE;
    VkFramebuffer fb = VK_NULL_HANDLE;
    const VkFormat fmt = VK_FORMAT_R8G8B8A8_UNORM;
    buf_create(vk, e, out, (VkDeviceSize)c->width * c->height * 4);
    if (e->r == VK_SUCCESS)
        memset(out->map, 0xcd, out->size);
    VkImageCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
        .imageType = VK_IMAGE_TYPE_2D, .format = fmt, .extent = {c->width, c->height, 1},
        .mipLevels = 1, .arrayLayers = 1, .samples = VK_SAMPLE_COUNT_1_BIT,
        .tiling = VK_IMAGE_TILING_OPTIMAL,
        .usage = VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT,
        .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
    VKTRY(e, vkCreateImage(vk->dev, &ici, NULL, &img));
    if (e->r == VK_SUCCESS) {
        VkMemoryRequirements req;
        vkGetImageMemoryRequirements(vk->dev, img, &req);
        int32_t type = memory_type(vk, req.memoryTypeBits, 0);
        VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, NULL, req.size,
                                   (uint32_t)type};
        VKTRY(e, vkAllocateMemory(vk->dev, &ai, NULL, &mem));
        VKTRY(e, vkBindImageMemory(vk->dev, img, mem, 0));
    }
    VkImageViewCreateInfo vci = {.sType = VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO,
        .image = img, .viewType = VK_IMAGE_VIEW_TYPE_2D, .format = fmt,
        .subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    VKTRY(e, vkCreateImageView(vk->dev, &vci, NULL, &view));
    VkAttachmentDescription att = {0, fmt, VK_SAMPLE_COUNT_1_BIT, VK_ATTACHMENT_LOAD_OP_CLEAR,
        VK_ATTACHMENT_STORE_OP_STORE, VK_ATTACHMENT_LOAD_OP_DONT_CARE,
        VK_ATTACHMENT_STORE_OP_DONT_CARE, VK_IMAGE_LAYOUT_UNDEFINED,
        VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL};
    VkAttachmentReference ref = {0, VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL};
    VkSubpassDescription sub = {.pipelineBindPoint = VK_PIPELINE_BIND_POINT_GRAPHICS,
                                .colorAttachmentCount = 1, .pColorAttachments = &ref};
    VkSubpassDependency dep = {0, VK_SUBPASS_EXTERNAL,
        VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
        VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT, VK_ACCESS_TRANSFER_READ_BIT, 0};
    VkRenderPassCreateInfo rpci = {VK_STRUCTURE_TYPE_RENDER_PASS_CREATE_INFO, NULL, 0, 1, &att,
                                   1, &sub, 1, &dep};
    VKTRY(e, vkCreateRenderPass(vk->dev, &rpci, NULL, &rp));
    VkFramebufferCreateInfo fci = {VK_STRUCTURE_TYPE_FRAMEBUFFER_CREATE_INFO, NULL, 0, rp, 1,
                                   &view, c->width, c->height, 1};
    VKTRY(e, vkCreateFramebuffer(vk->dev, &fci, NULL, &fb));
    VkCommandBuffer cmd = cmd_begin(vk, e);
    if (e->r == VK_SUCCESS) {
        VkClearValue cv;
        memcpy(cv.color.float32, c->color, sizeof(c->color));
        VkRenderPassBeginInfo rbi = {VK_STRUCTURE_TYPE_RENDER_PASS_BEGIN_INFO, NULL, rp, fb,
                                     {{0, 0}, {c->width, c->height}}, 1, &cv};
        vkCmdBeginRenderPass(cmd, &rbi, VK_SUBPASS_CONTENTS_INLINE);
        vkCmdEndRenderPass(cmd);
        VkBufferImageCopy bic = {0, 0, 0, {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1}, {0, 0, 0},
                                 {c->width, c->height, 1}};
        vkCmdCopyImageToBuffer(cmd, img, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, out->buf, 1,
                               &bic);
    }
    cmd_submit_wait(vk, e, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT);
    if (fb)
        vkDestroyFramebuffer(vk->dev, fb, NULL);
    if (rp)
        vkDestroyRenderPass(vk->dev, rp, NULL);
    if (view)
        vkDestroyImageView(vk->dev, view, NULL);
    if (img)
        vkDestroyImage(vk->dev, img, NULL);
    if (mem)
        vkFreeMemory(vk->dev, mem, NULL);
}

#define SPV(name) spv_##name, sizeof(spv_##name)
static const Dispatch D_ARITH = {SPV(arith), 1000, 8000 * 4, 21, 12, {1000, 0x9e3779b9u, 0x3fc00000u /* 1.5f */},
                                 {16, 1, 1}, {0}, 0};
static const Dispatch D_LOOP = {SPV(loop), 512, 1024 * 4, 22, 4, {512}, {16, 1, 1}, {0}, 0};
static const Dispatch D_BRANCH = {SPV(branch), 640, 640 * 4, 23, 0, {0}, {10, 1, 1}, {0}, 0};
static const Dispatch D_SHARED = {SPV(shared), 768, 1536 * 4, 24, 0, {0}, {6, 1, 1}, {0}, 0};
static const Dispatch D_ATOMICS = {SPV(atomics), 512, (72 + 8) * 4, 25, 0, {0}, {8, 1, 1}, {0}, 1};
#define IDS(name, lx, ly, lz, gx, gy, gz) static const Dispatch name = {SPV(ids), 0, \
    (lx) * (ly) * (lz) * (gx) * (gy) * (gz) * 16, 0, 0, {0}, {gx, gy, gz}, {lx, ly, lz}, 0};
IDS(D_IDS_1, 1, 1, 1, 1, 1, 1)
IDS(D_IDS_2, 64, 1, 1, 3, 1, 1)
IDS(D_IDS_3, 8, 8, 1, 2, 3, 4)
IDS(D_IDS_4, 4, 4, 4, 1, 2, 3)
IDS(D_IDS_5, 7, 3, 1, 3, 2, 2)
IDS(D_IDS_6, 256, 1, 1, 5, 1, 1)
IDS(D_IDS_7, 1, 1, 1, 37, 1, 1)
static const Clear C_64 = {64, 48, {1.0f, 0.0f, 0.2f, 0.6f}};       /* 255 0 51 153 */
static const Clear C_61 = {61, 37, {0.4f, 0.8f, 1.0f, 0.0f}};       /* 102 204 255 0 */
/* *0.2f etc. are k/255 rounded to float: k/255*255 is within 1e-5 of k, so every
 * conforming float->UNORM8 conversion gives k. */

typedef struct {
    const char *name;
    VkCaseFn fn;
    const void *arg;
} VkCase;

static const VkCase VK_CASES[] = {
    {"fill", case_fill, NULL},
    {"update", case_update, NULL},
    {"copy", case_copy, NULL},
    {"arith", case_dispatch, &D_ARITH},
    {"loop", case_dispatch, &D_LOOP},
    {"branch", case_dispatch, &D_BRANCH},
    {"shared", case_dispatch, &D_SHARED},
    {"atomics", case_dispatch, &D_ATOMICS},
    {"ids_1x1x1_1x1x1", case_dispatch, &D_IDS_1},
    {"ids_64x1x1_3x1x1", case_dispatch, &D_IDS_2},
    {"ids_8x8x1_2x3x4", case_dispatch, &D_IDS_3},
    {"ids_4x4x4_1x2x3", case_dispatch, &D_IDS_4},
    {"ids_7x3x1_3x2x2", case_dispatch, &D_IDS_5},
    {"ids_256x1x1_5x1x1", case_dispatch, &D_IDS_6},
    {"ids_1x1x1_37x1x1", case_dispatch, &D_IDS_7},
    {"clear_64x48", case_clear, &C_64},
    {"clear_61x37", case_clear, &C_61},
};

static int run_vk(const char *device, char **only, int n_only)
{
    Vk vk;
    memset(&vk, 0, sizeof(vk));
    if (vk_init(&vk, device) != 0)
        return 2;
    int failed = 0, lost = 0, ran = 0;
    for (size_t i = 0; i < ARRAY_LEN(VK_CASES); i++) {
        const VkCase *c = &VK_CASES[i];
        if (!wanted(c->name, only, n_only))
            continue;
        if (vk.dev == VK_NULL_HANDLE && vk_device_create(&vk) != 0)
            return 2;
        printf("%s.start=1\n", c->name);
        fflush(stdout);
        ran++;
        Err e = {VK_SUCCESS, NULL};
        Buf out;
        memset(&out, 0, sizeof(out));
        c->fn(&vk, &e, &out, c->arg);
        if (e.r == VK_SUCCESS) {
            report_ok(c->name, out.map, out.size);
        } else {
            failed++;
            report_fail(c->name, vk_result_name(e.r), e.at);
        }
        buf_destroy(&vk, &out);
        if (e.r == VK_ERROR_DEVICE_LOST || e.r == VK_TIMEOUT) {
            lost++;
            vk_device_destroy(&vk);     /* the next case gets a new device */
        }
    }
    vk_device_destroy(&vk);
    vkDestroyInstance(vk.instance, NULL);
    printf("cases=%d\nfailed=%d\ndevice_lost=%d\ndevices_created=%d\n", ran, failed, lost,
           vk.devices_created);
    return failed ? 1 : 0;
}

/* --- GLES 3.1 on surfaceless EGL ------------------------------------------------------ */

#define GL_FNS(X) X(glGetString) X(glGetError) X(glGenFramebuffers) X(glBindFramebuffer) \
    X(glGenRenderbuffers) X(glBindRenderbuffer) X(glRenderbufferStorage) \
    X(glFramebufferRenderbuffer) X(glCheckFramebufferStatus) X(glViewport) X(glClearColor) \
    X(glClear) X(glReadPixels) X(glFinish) X(glCreateShader) X(glShaderSource) \
    X(glCompileShader) X(glGetShaderiv) X(glGetShaderInfoLog) X(glCreateProgram) \
    X(glAttachShader) X(glLinkProgram) X(glGetProgramiv) X(glGetProgramInfoLog) \
    X(glUseProgram) X(glGenBuffers) X(glBindBuffer) X(glBufferData) X(glBindBufferBase) \
    X(glDispatchCompute) X(glMemoryBarrier) X(glMapBufferRange) X(glUnmapBuffer) \
    X(glPixelStorei)
#define GL_DECLARE(fn) static __typeof__(&fn) p_##fn;
GL_FNS(GL_DECLARE)
typedef GLenum (*PFN_reset_status)(void);
static PFN_reset_status p_reset_status;

static const char *gl_error_name(GLenum e)
{
    switch (e) {
    case GL_INVALID_ENUM: return "GL_INVALID_ENUM";
    case GL_INVALID_VALUE: return "GL_INVALID_VALUE";
    case GL_INVALID_OPERATION: return "GL_INVALID_OPERATION";
    case GL_OUT_OF_MEMORY: return "GL_OUT_OF_MEMORY";
    case GL_INVALID_FRAMEBUFFER_OPERATION: return "GL_INVALID_FRAMEBUFFER_OPERATION";
    case 0x0507: return "GL_CONTEXT_LOST";
    default: return "GL_ERROR_(other)";
    }
}

static int gl_init(void)
{
    void *egl = dlopen("libEGL.so.1", RTLD_NOW), *gles = dlopen("libGLESv2.so.2", RTLD_NOW);
    if (!egl || !gles) {
        printf("error=dlopen libEGL.so.1/libGLESv2.so.2: %s\n", dlerror());
        return -1;
    }
#define EGL_SYM(name) __typeof__(&name) p_##name = (__typeof__(&name))dlsym(egl, #name);
    EGL_SYM(eglGetPlatformDisplay) EGL_SYM(eglInitialize) EGL_SYM(eglBindAPI)
    EGL_SYM(eglChooseConfig) EGL_SYM(eglCreateContext) EGL_SYM(eglMakeCurrent)
    EGL_SYM(eglGetError)
    EGLDisplay dpy = p_eglGetPlatformDisplay(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY,
                                             NULL);
    EGLint major = 0, minor = 0, n = 0;
    if (dpy == EGL_NO_DISPLAY || !p_eglInitialize(dpy, &major, &minor)) {
        printf("error=eglInitialize(surfaceless) 0x%x\n", p_eglGetError());
        return -1;
    }
    p_eglBindAPI(EGL_OPENGL_ES_API);
    const EGLint cattr[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_ES3_BIT, EGL_SURFACE_TYPE, 0,
                            EGL_NONE};
    EGLConfig cfg;
    if (!p_eglChooseConfig(dpy, cattr, &cfg, 1, &n) || n < 1) {
        printf("error=eglChooseConfig 0x%x (%d configs)\n", p_eglGetError(), n);
        return -1;
    }
    const EGLint xattr[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 1, EGL_NONE};
    EGLContext ctx = p_eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, xattr);
    if (ctx == EGL_NO_CONTEXT || !p_eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
        printf("error=eglCreateContext/eglMakeCurrent ES 3.1 0x%x\n", p_eglGetError());
        return -1;
    }
#define GL_LOAD(fn) p_##fn = (__typeof__(&fn))dlsym(gles, #fn);
    GL_FNS(GL_LOAD)
    p_reset_status = (PFN_reset_status)dlsym(gles, "glGetGraphicsResetStatus");
    printf("gl.egl=%d.%d\ngl.renderer=%s\ngl.version=%s\n", major, minor,
           (const char *)p_glGetString(GL_RENDERER), (const char *)p_glGetString(GL_VERSION));
    fflush(stdout);
    return 0;
}

/* Mesa's own stderr in a GL case's process: panfrost reports a faulted job there ("MESA:
 * error: ...", then re-initializes its context) while GL itself raises no error. */
static FILE *mesa_log;

static const char *mesa_error(void)
{
    static char line[512];
    if (!mesa_log)
        return NULL;
    fflush(stderr);
    rewind(mesa_log);
    while (fgets(line, sizeof(line), mesa_log)) {
        if (strstr(line, "error")) {
            line[strcspn(line, "\n")] = 0;
            return line;
        }
    }
    return NULL;
}

static void mesa_log_print(const char *name)
{
    char line[512];
    if (!mesa_log)
        return;
    fflush(stderr);
    rewind(mesa_log);
    while (fgets(line, sizeof(line), mesa_log)) {
        line[strcspn(line, "\n")] = 0;
        printf("%s.stderr=%s\n", name, line);
    }
}

/* Returns NULL if GL and Mesa reported no error or reset, else what was reported. */
static const char *gl_problem(void)
{
    GLenum e = p_glGetError();
    if (e != GL_NO_ERROR)
        return gl_error_name(e);
    if (p_reset_status && p_reset_status() != GL_NO_ERROR)
        return "graphics reset (context lost)";
    return mesa_error();
}

/* panfrost notices a faulted job only at its next submit (GROUP_SUBMIT fails on the dead
 * group, it logs "Group became unusable" and re-creates its context), so after a case's
 * readback two more small submits (a 16x16 clear read back) make a fault show. */
static const char *gl_settle(void)
{
    const char *why = gl_problem();
    for (int i = 0; i < 2 && !why; i++) {
        GLuint fb, rb;
        uint8_t px[16 * 16 * 4];
        p_glGenFramebuffers(1, &fb);
        p_glBindFramebuffer(GL_FRAMEBUFFER, fb);
        p_glGenRenderbuffers(1, &rb);
        p_glBindRenderbuffer(GL_RENDERBUFFER, rb);
        p_glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, 16, 16);
        p_glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
        p_glViewport(0, 0, 16, 16);
        p_glClearColor(0.0f, 1.0f, 0.0f, 1.0f);
        p_glClear(GL_COLOR_BUFFER_BIT);
        p_glReadPixels(0, 0, 16, 16, GL_RGBA, GL_UNSIGNED_BYTE, px);
        why = gl_problem();
    }
    return why;
}

static void gl_clear(const char *name, const Clear *c)
{
    GLuint fb, rb;
    p_glGenFramebuffers(1, &fb);
    p_glBindFramebuffer(GL_FRAMEBUFFER, fb);
    p_glGenRenderbuffers(1, &rb);
    p_glBindRenderbuffer(GL_RENDERBUFFER, rb);
    p_glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, c->width, c->height);
    p_glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
    if (p_glCheckFramebufferStatus(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
        report_fail(name, "framebuffer incomplete", "glCheckFramebufferStatus");
        return;
    }
    p_glViewport(0, 0, c->width, c->height);
    p_glClearColor(c->color[0], c->color[1], c->color[2], c->color[3]);
    p_glClear(GL_COLOR_BUFFER_BIT);
    size_t size = (size_t)c->width * c->height * 4;
    uint8_t *px = malloc(size);
    memset(px, 0xcd, size);
    p_glPixelStorei(GL_PACK_ALIGNMENT, 1);
    p_glReadPixels(0, 0, c->width, c->height, GL_RGBA, GL_UNSIGNED_BYTE, px);
    const char *why = gl_settle();
    if (why)
        report_fail(name, why, "glClear+glReadPixels");
    else
        report_ok(name, px, size);
    free(px);
}

static const char GL_COMPUTE_SRC[] =
    "#version 310 es\n"
    "layout(local_size_x = 64) in;\n"
    "layout(std430, binding = 0) buffer B { uint d[]; };\n"
    "void main() {\n"
    "    uint i = gl_GlobalInvocationID.x, x = d[i];\n"
    "    uint r = (x * 2654435761u + (x >> 7u)) ^ gl_WorkGroupID.x;\n"
    "    for (uint j = 0u; j < (x & 7u); j++)\n"
    "        r = r * 33u + j;\n"
    "    if ((gl_LocalInvocationID.x & 1u) != 0u)\n"
    "        r = ~r;\n"
    "    d[i] = r;\n"
    "}\n";

static void gl_compute(const char *name)
{
    const GLchar *src = GL_COMPUTE_SRC;
    GLint ok = 0;
    char log[1024] = "";
    GLuint sh = p_glCreateShader(GL_COMPUTE_SHADER);
    p_glShaderSource(sh, 1, &src, NULL);
    p_glCompileShader(sh);
    p_glGetShaderiv(sh, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        p_glGetShaderInfoLog(sh, sizeof(log), NULL, log);
        report_fail(name, "compile failed", log);
        return;
    }
    GLuint prog = p_glCreateProgram();
    p_glAttachShader(prog, sh);
    p_glLinkProgram(prog);
    p_glGetProgramiv(prog, GL_LINK_STATUS, &ok);
    if (!ok) {
        p_glGetProgramInfoLog(prog, sizeof(log), NULL, log);
        report_fail(name, "link failed", log);
        return;
    }
    static uint32_t data[256];
    fill_random(data, ARRAY_LEN(data), 31);
    GLuint buf;
    p_glGenBuffers(1, &buf);
    p_glBindBuffer(GL_SHADER_STORAGE_BUFFER, buf);
    p_glBufferData(GL_SHADER_STORAGE_BUFFER, sizeof(data), data, GL_DYNAMIC_READ);
    p_glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 0, buf);
    p_glUseProgram(prog);
    p_glDispatchCompute(ARRAY_LEN(data) / 64, 1, 1);
    p_glMemoryBarrier(GL_BUFFER_UPDATE_BARRIER_BIT);
    const void *map = p_glMapBufferRange(GL_SHADER_STORAGE_BUFFER, 0, sizeof(data),
                                         GL_MAP_READ_BIT);
    const char *why = gl_settle();
    if (why || !map)
        report_fail(name, why ? why : "no mapping", "glDispatchCompute+glMapBufferRange");
    else
        report_ok(name, map, sizeof(data));
    if (map)
        p_glUnmapBuffer(GL_SHADER_STORAGE_BUFFER);
}

static const char *const GL_CASES[] = {"gl_clear_64x48", "gl_clear_61x37", "gl_compute"};

static void gl_case(const char *name)
{
    if (strcmp(name, "gl_clear_64x48") == 0)
        gl_clear(name, &C_64);
    else if (strcmp(name, "gl_clear_61x37") == 0)
        gl_clear(name, &C_61);
    else
        gl_compute(name);
}

static int run_gl(char **only, int n_only)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < ARRAY_LEN(GL_CASES); i++) {
        const char *name = GL_CASES[i];
        if (!wanted(name, only, n_only))
            continue;
        printf("%s.start=1\n", name);
        fflush(stdout);
        ran++;
        pid_t pid = fork();
        if (pid == 0) {             /* each case in its own process and context */
            mesa_log = tmpfile();
            if (mesa_log)
                dup2(fileno(mesa_log), 2);
            if (gl_init() != 0) {
                report_fail(name, "no GLES 3.1 context", "gl_init");
                _exit(1);
            }
            gl_case(name);
            mesa_log_print(name);
            fflush(stdout);
            _exit(mesa_error() ? 1 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) {
            printf("%s.result=crash\n%s.signal=%d\n", name, name, WTERMSIG(status));
            failed++;
        } else if (WEXITSTATUS(status) != 0) {
            failed++;
        }
        fflush(stdout);
    }
    printf("cases=%d\nfailed=%d\n", ran, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < ARRAY_LEN(VK_CASES); i++)
            printf("vk %s\n", VK_CASES[i].name);
        for (size_t i = 0; i < ARRAY_LEN(GL_CASES); i++)
            printf("gl %s\n", GL_CASES[i]);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "vk") == 0)
        return run_vk(argv[2], argv + 3, argc - 3);
    if (argc >= 2 && strcmp(argv[1], "gl") == 0)
        return run_gl(argv + 2, argc - 2);
    fprintf(stderr, "usage: mesa-cases vk DEVICE [CASE...] | gl [CASE...] | list\n");
    return 2;
}

#version 450
// Buffer and shared-memory atomics whose end result does not depend on the order in
// which lanes get there (old values returned by the atomics are not stored).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { uint a[]; };
layout(std430, binding = 1) buffer Out {
    uint sum; uint mx; uint mn; uint orv; uint andv; uint xorv; uint cnt; int smn;
    uint hist[64];
    uint wg[];
};
shared uint ssum;

void main() {
    uint i = gl_GlobalInvocationID.x, l = gl_LocalInvocationID.x;
    uint x = a[i];
    if (l == 0u)
        ssum = 0u;
    memoryBarrierShared();
    barrier();
    atomicAdd(sum, x);
    atomicMax(mx, x);
    atomicMin(mn, x);
    atomicOr(orv, (x & 0x0f0f0f0fu) << (i & 3u));
    atomicAnd(andv, x | 0x00ff00ffu);
    atomicXor(xorv, x);
    atomicAdd(cnt, 1u);
    atomicMin(smn, int(x));
    atomicAdd(hist[x & 63u], 1u);
    atomicAdd(ssum, x >> 8u);
    memoryBarrierShared();
    barrier();
    if (l == 0u)
        wg[gl_WorkGroupID.x] = ssum;
}

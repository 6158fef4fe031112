#version 450
// Workgroup-shared memory: each lane reads another lane's value after a barrier, then a
// tree reduction with a barrier per level.
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer In { uint a[]; };
layout(std430, binding = 1) writeonly buffer Out { uint o[]; };
shared uint s[128];
shared uint red[128];

void main() {
    uint g = gl_GlobalInvocationID.x, l = gl_LocalInvocationID.x;
    s[l] = a[g];
    red[l] = a[g] >> 4u;
    memoryBarrierShared();
    barrier();
    uint rev = s[127u - l];
    for (uint st = 64u; st > 0u; st >>= 1u) {
        if (l < st)
            red[l] += red[l + st];
        memoryBarrierShared();
        barrier();
    }
    o[2u * g] = rev;
    o[2u * g + 1u] = red[0] ^ l;
}

#version 450
// Branches that diverge per lane, nested, with a loop inside one side and an early return
// in another (those lanes leave the host's pattern in place).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { uint a[]; };
layout(std430, binding = 1) buffer Out { uint o[]; };

void main() {
    uint i = gl_GlobalInvocationID.x, l = gl_LocalInvocationID.x;
    uint x = a[i], r;
    if (l % 3u == 0u) {
        r = x * 3u;
        if ((x & 1u) != 0u)
            r ^= 0x55u;
        else
            r += 7u;
    } else if ((l & 4u) != 0u) {
        r = x >> 1u;
        for (uint j = 0u; j < (x & 7u); j++)
            r += j * l;
    } else {
        r = ~x;
        if (l > 40u && (x & 2u) != 0u)
            return;
    }
    o[i] = r;
}

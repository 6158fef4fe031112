#version 450
// Loops whose trip count differs per lane (a Collatz walk, a counted loop).
layout(local_size_x = 32) in;
layout(std430, binding = 0) readonly buffer In { uint a[]; };
layout(std430, binding = 1) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform P { uint n; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    uint x = a[i] % 1000u + 1u, steps = 0u;
    while (x != 1u && steps < 500u) {
        x = (x & 1u) != 0u ? 3u * x + 1u : x >> 1u;
        steps++;
    }
    uint acc = 0u;
    for (uint j = 0u; j < (i & 15u); j++)
        acc = (acc * 31u + j) ^ a[(i + j) % pc.n];
    o[2u * i] = steps;
    o[2u * i + 1u] = acc;
}

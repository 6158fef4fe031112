#version 450
// Integer and float arithmetic per element; `precise` keeps a*b+c from being fused, so
// every float result is defined by IEEE rounding alone (byte-comparable across drivers).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer In { uint a[]; };
layout(std430, binding = 1) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform P { uint n; uint k; float s; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n)
        return;
    uint x = a[i], y = a[(i * 7u + 3u) % pc.n];
    int sx = int(x), sy = int(y);
    o[8u * i + 0u] = x * y + pc.k;
    o[8u * i + 1u] = (x >> (y & 31u)) ^ (y << 3u) ^ ~x;
    o[8u * i + 2u] = uint(sx >> int(y & 31u));
    o[8u * i + 3u] = uint(min(sx, sy)) + uint(max(sx, sy)) * 3u;
    o[8u * i + 4u] = (y != 0u) ? x / y : x % 17u;
    int d = (sy & 0xffff) | 1;
    o[8u * i + 5u] = uint(sx / d) ^ (x % uint(d));
    precise float fx = float(sx & 0xfffff) * pc.s;
    precise float fy = float(y >> 12u) - 1234.5;
    precise float fz = fx * fy + fx;
    o[8u * i + 6u] = floatBitsToUint(fz);
    o[8u * i + 7u] = uint(int(floor(fy * 0.125))) ^ floatBitsToUint(max(fx, fy) - abs(fy));
}

#version 450
// Every invocation writes its IDs at its linear global index: the workgroup size comes from
// specialization constants, the count from vkCmdDispatch.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(std430, binding = 0) writeonly buffer Out { uvec4 o[]; };

uint pack3(uvec3 v) { return v.x | (v.y << 10u) | (v.z << 20u); }

void main() {
    uvec3 g = gl_GlobalInvocationID, n = gl_NumWorkGroups * gl_WorkGroupSize;
    uint idx = g.x + n.x * (g.y + n.y * g.z);
    o[idx] = uvec4(pack3(gl_WorkGroupID), pack3(gl_LocalInvocationID), gl_LocalInvocationIndex,
                   pack3(gl_NumWorkGroups));
}

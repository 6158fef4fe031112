"""The emulated MCU: boot, the global interface and its req/ack protocol, in the shared
section reached through AS0. (firmware_loader/ holds the firmware images.)"""

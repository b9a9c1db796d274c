// Package firmware will own recovery packages: zip and signature
// verification, USB stick discovery and FAT checks, atomic power-loss-safe
// staging, the content-addressed artifact store and exact-bytes rollback.
// Not built yet: see the issue "Firmware staging".
package firmware

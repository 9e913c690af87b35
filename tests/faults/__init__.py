"""Fault and abuse suite (issue 7): kills, concurrent editors, flaky services, full or
read-only disks, and property-based fuzzing. See docs/faults.md."""

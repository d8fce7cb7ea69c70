module chaoskit.local/probe

go 1.22

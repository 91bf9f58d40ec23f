module example.com/monitor/client

go 1.19

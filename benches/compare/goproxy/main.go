// A minimal TCP proxy for benches/compare.rs: every accepted connection gets one upstream
// connection and two io.Copy calls, one per direction. Between two *net.TCPConn, io.Copy
// uses TCPConn.ReadFrom, which on Linux moves the bytes with splice(2) through a pipe of the
// kernel's default size (64 KiB; Go does not set F_SETPIPE_SZ), so no byte enters user
// space. A FIN is passed on with CloseWrite once a direction has copied everything.
//
// Usage: goproxy LISTEN UPSTREAM
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goproxy LISTEN UPSTREAM")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c.(*net.TCPConn), os.Args[2])
	}
}

// serve proxies client to a new upstream connection until both directions are done.
func serve(client *net.TCPConn, upstream string) {
	defer client.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	up := u.(*net.TCPConn)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, client)
		up.CloseWrite()
		close(done)
	}()
	io.Copy(client, up)
	client.CloseWrite()
	<-done
}

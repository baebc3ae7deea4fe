package origin

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("accept timed out")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestPipe(t *testing.T) {
	t.Run("half close carries the reply", func(t *testing.T) {
		user, lbFront := tcpPair(t)
		lbBack, app := tcpPair(t)
		type res struct {
			up, down int64
			idled    bool
		}
		done := make(chan res, 1)
		go func() {
			up, down, idled := pipe(lbFront, lbBack, 5*time.Second)
			done <- res{up, down, idled}
		}()
		go func() {
			// The app reads the whole request (to EOF), then answers.
			b, _ := io.ReadAll(app)
			app.Write([]byte("got " + string(b)))
			app.Close()
		}()
		user.Write([]byte("ping"))
		user.(*net.TCPConn).CloseWrite()
		user.SetReadDeadline(time.Now().Add(5 * time.Second))
		reply, err := io.ReadAll(user)
		if err != nil || string(reply) != "got ping" {
			t.Fatalf("reply %q, %v", reply, err)
		}
		select {
		case r := <-done:
			if r.up != 4 || r.down != 8 || r.idled {
				t.Fatalf("pipe = %+v; want 4 up, 8 down, not idled", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pipe did not return")
		}
	})
	t.Run("idle connection is closed", func(t *testing.T) {
		user, lbFront := tcpPair(t)
		lbBack, app := tcpPair(t)
		done := make(chan bool, 1)
		go func() {
			_, _, idled := pipe(lbFront, lbBack, 100*time.Millisecond)
			done <- idled
		}()
		// Traffic one way keeps the other way open past the idle time.
		for range 4 {
			app.Write([]byte("tick"))
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-done:
			t.Fatal("closed while the target was sending")
		default:
		}
		select {
		case idled := <-done:
			if !idled {
				t.Fatal("pipe ended without idling out")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("idle connection not closed")
		}
		user.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(user); err != nil || string(b) != strings.Repeat("tick", 4) {
			t.Fatalf("user read %q, %v", b, err)
		}
	})
}

func TestPeekServerName(t *testing.T) {
	tests := []struct {
		name    string
		send    func(c net.Conn)
		wantSNI string
		wantErr bool
	}{
		{"TLS ClientHello", func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "a.example.test", InsecureSkipVerify: true}).Handshake()
		}, "a.example.test", false},
		{"no SNI", func(c net.Conn) {
			tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
		}, "", false},
		{"plain text", func(c net.Conn) { c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			client.SetDeadline(time.Now().Add(5 * time.Second))
			go tt.send(client)
			sni, replay, err := peekServerName(server, 2*time.Second)
			if sni != tt.wantSNI || (err != nil) != tt.wantErr || len(replay) == 0 {
				t.Fatalf("peek = %q, %d bytes, %v", sni, len(replay), err)
			}
			// Nothing was written to the client.
			server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := bufio.NewReader(client).Read(make([]byte, 1)); n != 0 {
				t.Fatal("the peek answered the client")
			}
		})
	}
}

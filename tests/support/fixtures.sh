# Shell helpers shared by the integration tests and benches that start tandem processes
# (sourced, not run; CTest runs only tests/integration/*.sh).

# port_of_log LOG: the port a `tandem serve|edge|linkemu` printed as "listening on PORT".
port_of_log() { grep -o 'listening on [0-9]*' "$1" | grep -o '[0-9]*$'; }

# write_images DIR PREFIX N SEED ZERO_PROB: N random 1x1x28x28 float32 .npy files
# DIR/PREFIX0.npy ...; each pixel is 0 with probability ZERO_PROB, else uniform in [0, 1).
# Seeded, so every run writes the same files.
write_images() {
    perl -e '
        my ($dir, $prefix, $n, $seed, $zp) = @ARGV;
        my $h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (1, 1, 28, 28), }";
        $h .= " " x (64 - (10 + length($h) + 1) % 64) . "\n";
        srand($seed);
        for my $i (0 .. $n - 1) {
            open(my $f, ">", "$dir/$prefix$i.npy") or die "$dir/$prefix$i.npy: $!";
            binmode $f;
            print $f "\x93NUMPY\x01\x00" . pack("v", length $h) . $h;
            print $f pack("f<*", map { $zp > 0 ? (rand() < $zp ? 0 : rand()) : rand() } 1 .. 784);
            close $f;
        }' "$@"
}

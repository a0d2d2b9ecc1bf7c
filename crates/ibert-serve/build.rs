fn main() {
    ibert_build::link_duckdb();
}

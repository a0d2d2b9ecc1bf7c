//! One CSV file per table, written by the pure-Rust TPC generators (`tpchgen`, `tpcdsgen`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use tpcdsgen::config::{Session, SessionBuilder, Table};

use crate::Benchmark;

/// Writes `<table>.csv` (with a header line) into `dir` for every table of the benchmark, and
/// returns the table names in the order written.
pub(crate) fn write_csv_files(benchmark: Benchmark, scale: f64, dir: &Path) -> std::io::Result<Vec<&'static str>> {
    match benchmark {
        Benchmark::H => write_tpch(scale, dir),
        Benchmark::Ds => write_tpcds(scale, dir),
    }
}

fn create(dir: &Path, table: &str, header: &str) -> std::io::Result<BufWriter<File>> {
    let mut writer = BufWriter::new(File::create(dir.join(format!("{table}.csv")))?);
    writeln!(writer, "{header}")?;
    Ok(writer)
}

fn write_tpch(scale: f64, dir: &Path) -> std::io::Result<Vec<&'static str>> {
    use tpchgen::csv::*;
    use tpchgen::generators::*;
    let mut written = Vec::new();
    // Each generator yields rows whose `*Csv` wrapper formats one line.
    macro_rules! table {
        ($name:literal, $generator:ident, $csv:ident) => {{
            let mut writer = create(dir, $name, $csv::header())?;
            for row in $generator::new(scale, 1, 1).iter() {
                writeln!(writer, "{}", $csv::new(row))?;
            }
            writer.flush()?;
            written.push($name);
        }};
    }
    table!("region", RegionGenerator, RegionCsv);
    table!("nation", NationGenerator, NationCsv);
    table!("part", PartGenerator, PartCsv);
    table!("supplier", SupplierGenerator, SupplierCsv);
    table!("partsupp", PartSuppGenerator, PartSuppCsv);
    table!("customer", CustomerGenerator, CustomerCsv);
    table!("orders", OrderGenerator, OrderCsv);
    table!("lineitem", LineItemGenerator, LineItemCsv);
    Ok(written)
}

fn write_tpcds(scale: f64, dir: &Path) -> std::io::Result<Vec<&'static str>> {
    use tpcdsgen::csv::*;
    use tpcdsgen::row::*;
    let session: Session =
        SessionBuilder::new().with_scale_factor(scale).build().map_err(|error| std::io::Error::other(format!("TPC-DS scale factor {scale}: {error}")))?;
    let mut written = Vec::new();
    macro_rules! table {
        ($name:literal, $table:ident, $generator:ident, $csv:ident) => {{
            let mut writer = create(dir, $name, &$csv::header_with_delimiter(','))?;
            let rows = session.get_scaling().get_row_count(Table::$table);
            for row in $generator::new(session.clone(), rows) {
                writeln!(writer, "{}", $csv::new(&row))?;
            }
            writer.flush()?;
            written.push($name);
        }};
    }
    table!("call_center", CallCenter, CallCenterRowGenerator, CallCenterCsv);
    table!("catalog_page", CatalogPage, CatalogPageRowGenerator, CatalogPageCsv);
    table!("catalog_returns", CatalogReturns, CatalogReturnsRowGenerator, CatalogReturnsCsv);
    table!("catalog_sales", CatalogSales, CatalogSalesRowGenerator, CatalogSalesCsv);
    table!("customer", Customer, CustomerRowGenerator, CustomerCsv);
    table!("customer_address", CustomerAddress, CustomerAddressRowGenerator, CustomerAddressCsv);
    table!("customer_demographics", CustomerDemographics, CustomerDemographicsRowGenerator, CustomerDemographicsCsv);
    table!("date_dim", DateDim, DateDimRowGenerator, DateDimCsv);
    table!("household_demographics", HouseholdDemographics, HouseholdDemographicsRowGenerator, HouseholdDemographicsCsv);
    table!("income_band", IncomeBand, IncomeBandRowGenerator, IncomeBandCsv);
    table!("inventory", Inventory, InventoryRowGenerator, InventoryCsv);
    table!("item", Item, ItemRowGenerator, ItemCsv);
    table!("promotion", Promotion, PromotionRowGenerator, PromotionCsv);
    table!("reason", Reason, ReasonRowGenerator, ReasonCsv);
    table!("ship_mode", ShipMode, ShipModeRowGenerator, ShipModeCsv);
    table!("store", Store, StoreRowGenerator, StoreCsv);
    table!("store_returns", StoreReturns, StoreReturnsRowGenerator, StoreReturnsCsv);
    table!("store_sales", StoreSales, StoreSalesRowGenerator, StoreSalesCsv);
    table!("time_dim", TimeDim, TimeDimRowGenerator, TimeDimCsv);
    table!("warehouse", Warehouse, WarehouseRowGenerator, WarehouseCsv);
    table!("web_page", WebPage, WebPageRowGenerator, WebPageCsv);
    table!("web_returns", WebReturns, WebReturnsRowGenerator, WebReturnsCsv);
    table!("web_sales", WebSales, WebSalesRowGenerator, WebSalesCsv);
    table!("web_site", WebSite, WebSiteRowGenerator, WebSiteCsv);
    Ok(written)
}
